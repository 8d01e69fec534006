#!/usr/bin/env python3
"""Runs a command N times and prints the median wall-clock seconds.

Usage: median_time.py N COMMAND [ARGS...]. The command's output is
discarded; a failing run stops everything with its stderr, since a figure
for a broken command would be meaningless.
"""
import statistics
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    runs = int(sys.argv[1])
    command = sys.argv[2:]
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.stderr.write(done.stderr.decode(errors="replace"))
            print(f"{' '.join(command)} exited {done.returncode}", file=sys.stderr)
            return 1
    print(f"{statistics.median(seconds):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
