"""The benchmark's latency relay (bench/latency_relay.py) on loopback, against an echo server.

The push benchmark's round-trip counts are only as good as the delay this relay adds, so CI
checks it without running the benchmark: the handshake and every round trip take at least the
RTT, bytes arrive intact and in order, end-of-file travels both ways, and waiting costs no CPU.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

RELAY = Path(__file__).resolve().parent.parent / "bench" / "latency_relay.py"
RTT = 0.2


@pytest.fixture
def echo_server() -> Iterator[Tuple[str, int]]:
    """A TCP server on loopback that sends back what it reads, and closes after EOF."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()
    server.close()
    thread.join(timeout=5)


def read_exactly(stream: "subprocess.Popen[bytes]", size: int) -> bytes:
    assert stream.stdout is not None
    data = b""
    while len(data) < size:
        chunk = os.read(stream.stdout.fileno(), size - len(data))
        assert chunk, f"end of file after {len(data)} of {size} bytes"
        data += chunk
    return data


def test_relay_adds_the_rtt_keeps_bytes_and_order_and_does_not_spin(
    echo_server: Tuple[str, int],
) -> None:
    host, port = echo_server
    started = time.monotonic()
    relay = subprocess.Popen(
        [sys.executable, "-S", str(RELAY), str(int(RTT * 1000)), host, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert relay.stdin is not None
    try:
        # Written at once, like ssh's version line: it reaches the host with the TCP
        # handshake (1.5 RTT) and comes back RTT/2 later.
        relay.stdin.write(b"hello")
        relay.stdin.flush()
        assert read_exactly(relay, 5) == b"hello"
        first = time.monotonic() - started
        assert 2 * RTT <= first < 2 * RTT + 1.0, first

        for turn in range(3):
            sent = time.monotonic()
            relay.stdin.write(b"ping%d" % turn)
            relay.stdin.flush()
            assert read_exactly(relay, 5) == b"ping%d" % turn
            assert RTT <= time.monotonic() - sent < RTT + 1.0

        # Many writes in a row, of every byte value, without waiting: all come back in order
        # after one round trip, not one per write.
        payload = b"".join(bytes([n % 256]) * (n % 997 + 1) + b"%06d" % n for n in range(600))
        sent = time.monotonic()
        for offset in range(0, len(payload), 4096):
            relay.stdin.write(payload[offset : offset + 4096])
            relay.stdin.flush()
        assert read_exactly(relay, len(payload)) == payload
        assert RTT <= time.monotonic() - sent < RTT + 2.0

        # End of file: passed to the host, which closes; the relay passes that back and exits.
        relay.stdin.close()
        assert relay.stdout is not None
        assert relay.stdout.read() == b""
        _, status, usage = os.wait4(relay.pid, 0)
        relay.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
    finally:
        if relay.returncode is None:
            relay.kill()
            relay.wait()
    assert relay.returncode == 0
    assert wall >= 6 * RTT
    # Waiting is select() with a timeout: the relay's CPU is its start-up and the copying,
    # far below the time it spent waiting (a busy loop would use about all of it).
    assert usage.ru_utime + usage.ru_stime < 0.3 * wall, (usage, wall)
