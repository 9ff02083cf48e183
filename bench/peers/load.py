"""A background load for bench/peers/run.py --busy: processes that keep a core busy.

    python bench/peers/load.py --procs 1 --seconds 900

Each process hashes a buffer in a loop until --seconds have passed (it stops by itself if the
bench that started it dies) or it is terminated. Local CPU work only, no network.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import time


def burn(seconds: float) -> None:
    buffer = b"x" * 65536
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(200):
            buffer = hashlib.sha256(buffer).digest() * 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=900)
    args = parser.parse_args()
    workers = [
        multiprocessing.Process(target=burn, args=(args.seconds,), daemon=True)
        for _ in range(max(1, args.procs))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
