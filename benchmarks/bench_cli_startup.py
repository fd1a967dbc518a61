"""How long the installed ``lossaudit`` console script takes for the commands that must stay light.

Usage::

    python benchmarks/bench_cli_startup.py [--runs 15] [--budget 0.3] [--strict]

Runs each command ``--runs`` times (after one warm-up run that fills the OS file cache), as a real
process started the way a user starts it, and prints a table of median / min / max wall time.
``lossaudit --help`` has a budget (0.3 s by default); ``rules`` and ``explain LA101`` are shown for
comparison. With ``--strict`` the script exits 1 when a budgeted command's median is over budget.
Timing belongs here, not in the tests: a shared CI machine makes wall time too noisy to assert on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("rules",), ("explain", "LA101"))
BUDGETED = {("--help",)}


def console_script() -> str:
    """The ``lossaudit`` installed beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("lossaudit")
    if beside.exists():
        return str(beside)
    found = shutil.which("lossaudit")
    if found is None:
        raise SystemExit("lossaudit is not installed: pip install -e . first")
    return found


def time_command(script: str, args: tuple[str, ...], runs: int) -> list[float]:
    env = os.environ.copy()
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run([script, *args], capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(
                f"lossaudit {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[:200]}"
            )
        if i > 0:  # the first run is the warm-up
            samples.append(elapsed)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (default 15)")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds allowed for --help (default 0.3)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budgeted median is over budget")
    args = parser.parse_args(argv)
    script = console_script()
    print(f"{script}, {args.runs} runs each (median of wall time, one warm-up run not counted)")
    print(f"{'command':<24} {'median s':>9} {'min s':>7} {'max s':>7} {'budget s':>9}  status")
    over = False
    for command in COMMANDS:
        samples = time_command(script, command, args.runs)
        median = statistics.median(samples)
        budgeted = command in BUDGETED
        status = ("ok" if median <= args.budget else "OVER") if budgeted else "-"
        over = over or status == "OVER"
        budget = f"{args.budget:9.3f}" if budgeted else f"{'-':>9}"
        name = "lossaudit " + " ".join(command)
        print(f"{name:<24} {median:9.3f} {min(samples):7.3f} {max(samples):7.3f} {budget}  {status}")
    return 1 if over and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
