"""Randomart: the "drunken bishop" picture of a digest, for comparing keys by eye.

The walk follows the well-known description of OpenSSH's visual host key:
a bishop starts in the middle of a 17x9 board; each byte of the digest, two
bits at a time from the lowest, moves it one step diagonally (bit 0: left or
right, bit 1: up or down), staying inside the board; squares count visits and
are drawn with characters for increasing counts; S marks the start, E the end.
"""

from typing import List

WIDTH, HEIGHT = 17, 9
SYMBOLS = " .o+=*BOX@%&#/^"


def randomart(digest: bytes, title: str, footer: str) -> str:
    counts: List[List[int]] = [[0] * WIDTH for _ in range(HEIGHT)]
    x, y = WIDTH // 2, HEIGHT // 2
    start = (x, y)
    for byte in digest:
        for _ in range(4):
            x = min(max(x + (1 if byte & 1 else -1), 0), WIDTH - 1)
            y = min(max(y + (1 if byte & 2 else -1), 0), HEIGHT - 1)
            counts[y][x] += 1
            byte >>= 2
    rows = []
    for row_index, row in enumerate(counts):
        cells = []
        for column, count in enumerate(row):
            if (column, row_index) == (x, y):
                cells.append("E")
            elif (column, row_index) == start:
                cells.append("S")
            else:
                cells.append(SYMBOLS[min(count, len(SYMBOLS) - 1)])
        rows.append("|" + "".join(cells) + "|")
    return "\n".join([_frame(title), *rows, _frame(footer)])


def _frame(label: str) -> str:
    label = f"[{label[: WIDTH - 2]}]"
    left = (WIDTH - len(label)) // 2
    return "+" + "-" * left + label + "-" * (WIDTH - len(label) - left) + "+"
