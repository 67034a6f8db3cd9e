"""A TCP relay for ssh's ProxyCommand that adds a round-trip time, in user space.

The kernel of the benchmark machine has no netem qdisc, so latency is added here, the same
for every tool: ssh_config names this program as ``ProxyCommand``, and it

* connects to the host as a TCP handshake over that RTT would (the client's first bytes
  leave after one RTT and reach the host, which only then accepts, RTT/2 later),
* holds every chunk it reads for RTT/2 before writing it on, in each direction, in order
  (with a constant delay, first read is first delivered).

An end-of-file travels the same way: it is passed on (a half-close towards the host, closing
stdout towards ssh) RTT/2 after it was read, once the data before it is out.  Nothing spins:
the loop sleeps in ``select`` until a descriptor is ready or the next chunk falls due.
Bandwidth is not limited: the benchmark's payloads are a few kilobytes.

Usage (as ssh runs it): ``python3 -S latency_relay.py RTT_MS HOST PORT``; data from stdin goes
to HOST:PORT, data from there to stdout.  Only the standard library, imported cheaply: ssh
starts one relay per connection.
"""

import collections
import contextlib
import os
import selectors
import signal
import socket
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: ssh starts one relay per connection
if TYPE_CHECKING:
    from typing import Callable, Deque, Dict, List, Optional, Tuple

CHUNK = 65536


class Direction:
    """One way through the relay: what was read, when it falls due, and the writer's state."""

    def __init__(self, source: int, sink: int, delay: float, close: "Callable[[], None]") -> None:
        self.source = source
        self.sink = sink
        self.delay = delay
        self.close = close  # passes the end-of-file on
        self.queue: Deque[Tuple[float, bytes]] = collections.deque()
        self.pending = b""  # fell due, not yet written (the sink was full)
        self.reading = True
        self.done = False  # the end-of-file was passed on

    def read(self, now: float) -> None:
        try:
            data = os.read(self.source, CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self.queue.append((now + self.delay, data))  # b"" carries the end-of-file
        if not data:
            self.reading = False

    def next_due(self) -> "Optional[float]":
        return self.queue[0][0] if self.queue and not self.pending else None

    def deliver(self, now: float) -> None:
        """Write out what is due, in order, as far as the sink takes it."""
        while not self.done:
            if not self.pending:
                if not self.queue or self.queue[0][0] > now:
                    return
                _, data = self.queue.popleft()
                if not data:
                    self.close()
                    self.done = True
                    return
                self.pending = data
            try:
                written = os.write(self.sink, self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the reader is gone: drop the rest, as a reset would
                self.pending, self.queue = b"", collections.deque()
                self.reading, self.done = False, True
                return
            self.pending = self.pending[written:]


def relay(rtt: float, host: str, port: int, stdin: int = 0, stdout: int = 1) -> None:
    # The TCP handshake with a host RTT/2 away: the client's connect() returns after one RTT
    # (SYN, SYN-ACK), the host accepts when the ACK arrives, RTT/2 later; what the client
    # wrote meanwhile (ssh's version line) arrives with that ACK.
    time.sleep(1.5 * rtt)
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for fd in (stdin, stdout, sock.fileno()):
        os.set_blocking(fd, False)

    def half_close() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    upstream = Direction(stdin, sock.fileno(), rtt / 2, half_close)
    downstream = Direction(sock.fileno(), stdout, rtt / 2, lambda: os.close(stdout))
    directions = (upstream, downstream)
    upstream.read(time.monotonic() - upstream.delay)  # due now: it travelled with the ACK
    selector = selectors.DefaultSelector()
    registered: Dict[int, int] = {}
    while not (upstream.done and downstream.done):
        now = time.monotonic()
        for direction in directions:
            direction.deliver(now)
        wanted: Dict[int, int] = {}
        for direction in directions:
            if direction.reading:
                wanted[direction.source] = wanted.get(direction.source, 0) | selectors.EVENT_READ
            if direction.pending:
                wanted[direction.sink] = wanted.get(direction.sink, 0) | selectors.EVENT_WRITE
        for fd in set(registered) - set(wanted):
            selector.unregister(fd)
        for fd, events in wanted.items():
            if fd not in registered:
                selector.register(fd, events)
            elif registered[fd] != events:
                selector.modify(fd, events)
        registered = wanted
        dues = [d for d in (upstream.next_due(), downstream.next_due()) if d is not None]
        if not wanted and not dues:
            break
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else None
        for key, events in selector.select(timeout):
            if events & selectors.EVENT_READ:
                now = time.monotonic()
                for direction in directions:
                    if direction.reading and direction.source == key.fd:
                        direction.read(now)
    sock.close()


def main(argv: "List[str]") -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: latency_relay.py RTT_MS HOST PORT\n")
        return 2
    # ssh ends its ProxyCommand with SIGHUP (or SIGTERM): leave quietly, no traceback.
    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, lambda *_: os._exit(0))
    relay(float(argv[1]) / 1000, argv[2], int(argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
