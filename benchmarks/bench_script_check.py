"""How long ``lossaudit check PATH`` takes on a tree of training scripts.

Usage::

    python benchmarks/bench_script_check.py [--files 500] [--runs 5] [--keep DIR]

Generates ``--files`` scripts into a temporary tree (ten folders; every 25th file a notebook):
each is one of the test corpus's scripts (``tests/scripts/``: seeds, correct and quiet ones, so
about one in eight has findings) with its own constants and a block of ordinary data-loading and
plotting code around it, about 110 lines a file. Then it times, as medians over ``--runs``:

* in-process: :func:`lossaudit.script.check.check_paths` on the tree (reading, parsing,
  following, judging; no process start-up);
* the installed ``lossaudit check TREE --format json`` as a process (what pre-commit and CI
  run), and the same command on an empty folder: the difference over the file count is the cost
  per file after start-up.

Budgets (this project's target on its 2-core machine): the process at most 3 s for 500 files,
and at most 10 ms per file after start-up; ``--strict`` exits 1 when a median is over one.
Timing belongs here, not in the tests: a shared machine makes wall time too noisy to assert on.
Beside wall time each row gives the CPU time (user + system, the pool's workers included): on a
machine other jobs load, wall time grows with the load and CPU time much less, so the two
together tell a slow check from a busy machine. The budgets are judged on wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "scripts"
BUDGET_TOTAL = 3.0
BUDGET_PER_FILE = 0.010

SURROUNDING = '''

def load_table(path, label_column="label", drop=()):
    """Read a CSV export, drop the columns we do not train on, split features and labels."""
    import pandas as pd

    frame = pd.read_csv(path)
    for column in drop:
        if column in frame.columns:
            frame = frame.drop(columns=[column])
    frame = frame.dropna()
    labels = frame.pop(label_column)
    return frame.to_numpy(dtype="float32"), labels.to_numpy()


def standardise(x, eps=1e-7):
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True)
    return (x - mean) / (std + eps)


def plot_history(history, metric="accuracy", out="history.png"):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for key in (metric, f"val_{metric}"):
        if key in history.history:
            axis.plot(history.history[key], label=key)
    axis.set_xlabel("epoch")
    axis.legend()
    figure.savefig(out, dpi=120)
    plt.close(figure)


class Timer:
    def __init__(self, name):
        self.name = name
        self.start = None

    def __enter__(self):
        import time

        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import time

        print(f"{self.name}: {time.perf_counter() - self.start:.1f} s")
        return False


SETTINGS = {"seed": @SEED@, "batch_size": @BATCH@, "epochs": @EPOCHS@, "learning_rate": @LR@}
'''


def templates() -> list[str]:
    files = sorted(p for p in CORPUS.rglob("*.py"))
    if not files:
        raise SystemExit(f"no corpus under {CORPUS}")
    return [p.read_text(encoding="utf-8") for p in files]


def generate(folder: Path, count: int, seed: int = 0) -> int:
    """Write ``count`` scripts under ``folder``; return the total number of lines."""
    rng = random.Random(seed)
    sources = templates()
    lines = 0
    for i in range(count):
        text = sources[i % len(sources)]
        extra = (
            SURROUNDING.replace("@SEED@", str(rng.randint(0, 10_000)))
            .replace("@BATCH@", str(rng.choice((32, 64, 128))))
            .replace("@EPOCHS@", str(rng.randint(1, 50)))
            .replace("@LR@", str(rng.choice((1e-3, 3e-4, 1e-2))))
        )
        body = text + extra
        sub = folder / f"project{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 25 == 24:
            cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": body.splitlines(keepends=True)}]  # fmt: skip
            doc = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
            (sub / f"train_{i:04d}.ipynb").write_text(json.dumps(doc, indent=1), encoding="utf-8")
        else:
            (sub / f"train_{i:04d}.py").write_text(body, encoding="utf-8")
        lines += body.count("\n") + 1
    (folder / ".git").mkdir(exist_ok=True)  # a repository root: no pins from above the tree
    return lines


def console_script() -> str:
    beside = Path(sys.executable).with_name("lossaudit")
    if beside.exists():
        return str(beside)
    found = shutil.which("lossaudit")
    if found is None:
        raise SystemExit("lossaudit is not installed: pip install -e . first")
    return found


def children_cpu() -> float:
    """CPU seconds of the finished child processes waited for (theirs and their children's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_process(
    args: list[str], runs: int, cwd: Path, env: dict[str, str]
) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of each run of ``args`` after a warm-up run, and its exit code."""
    samples = []
    cpu = []
    code = 0
    for i in range(runs + 1):
        cpu_before = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, env=env, cwd=cwd, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[:300]}")
        code = proc.returncode
        if i > 0:  # the first run is the warm-up
            samples.append(elapsed)
            cpu.append(children_cpu() - cpu_before)
    return samples, cpu, code


def time_in_process(tree: Path, runs: int) -> tuple[list[float], list[float], int, int]:
    """Wall and CPU seconds (this process and the pool's workers) of each check after a warm-up."""
    from lossaudit.script.check import check_paths

    samples = []
    cpu = []
    findings = models = 0
    for i in range(runs + 1):
        cpu_before = time.process_time() + children_cpu()
        start = time.perf_counter()
        report = check_paths([tree])
        elapsed = time.perf_counter() - start
        findings, models = len(report.findings), len(report.context["models"])
        if i > 0:
            samples.append(elapsed)
            cpu.append(time.process_time() + children_cpu() - cpu_before)
    return samples, cpu, findings, models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500, help="scripts to generate (default 500)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--keep", type=Path, default=None, help="generate into this folder and keep it")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a median is over budget")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lossaudit-bench-")) if args.keep is None else args.keep
    try:
        tree = work / "tree"
        empty = work / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        lines = generate(tree, args.files)
        script = console_script()
        # As an installed package runs: with its bytecode cached (a private cache folder, so
        # PYTHONDONTWRITEBYTECODE in this environment does not make every start compile lossaudit).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        inproc, inproc_cpu, findings, models = time_in_process(tree, args.runs)
        command = [script, "check", str(tree), "--format", "json"]
        process, process_cpu, code = time_process(command, args.runs, work, env)
        empty_command = [script, "check", str(empty), "--format", "json"]
        startup, startup_cpu, _ = time_process(empty_command, args.runs, work, env)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    median_in = statistics.median(inproc)
    median_process = statistics.median(process)
    median_startup = statistics.median(startup)
    per_file = (median_process - median_startup) / args.files
    per_file_cpu = (statistics.median(process_cpu) - statistics.median(startup_cpu)) / args.files
    print(f"{args.files} files, {lines} lines; {models} models judged, {findings} findings (exit {code})")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {os.cpu_count()} cores (load average {load:.1f} at the end), Python "
        f"{sys.version.split()[0]}; medians of {args.runs} runs"
    )
    print()
    print("| measure | median | min | max | CPU median |")
    print("|---|---:|---:|---:|---:|")
    for name, samples, cpu in (
        (f"in-process `check_paths` ({args.files} files)", inproc, inproc_cpu),
        (f"`lossaudit check TREE --format json` ({args.files} files)", process, process_cpu),
        ("`lossaudit check EMPTY --format json` (start-up)", startup, startup_cpu),
    ):
        print(
            f"| {name} | {statistics.median(samples):.3f} s | {min(samples):.3f} s "
            f"| {max(samples):.3f} s | {statistics.median(cpu):.3f} s |"
        )
    print()
    print(f"per file in-process: {median_in / args.files * 1000:.2f} ms")
    print(
        f"per file after start-up (process): {per_file * 1000:.2f} ms wall, {per_file_cpu * 1000:.2f} ms CPU"
    )
    over = median_process > BUDGET_TOTAL * args.files / 500 or per_file > BUDGET_PER_FILE
    print(
        f"budget: {BUDGET_TOTAL:.0f} s for 500 files, {BUDGET_PER_FILE * 1000:.0f} ms per file: "
        + ("OVER" if over else "within")
    )
    return 1 if over and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
