"""How long a static read of a saved model takes, against loading the same file in Keras.

For every fixture in tests/data/models/ (except the deliberately broken ones) it measures, as the
median wall time over repeats:

* ``in-process``: ``read_model_file(path)`` in this interpreter (after one warm-up call);
* ``static proc``: a fresh ``python -c`` that imports lossaudit's reader and reads the file
  (interpreter start included);
* ``check CLI``: a fresh ``lossaudit check --model FILE`` (what the acceptance budget of 0.5 s is
  about: interpreter start, CLI import, read, rule run, report);
* ``keras load``: a fresh ``python -c`` running ``keras.saving.load_model(path)`` (TensorFlow
  import included; ``safe_mode=False`` so the Lambda fixture loads too).

Run from the repository root in the project venv::

    python benchmarks/bench_static_read.py                 # all columns (a few minutes)
    python benchmarks/bench_static_read.py --no-keras      # static columns only (seconds)
    python benchmarks/bench_static_read.py --repeats 9 --keras-repeats 1

The machine is shared: compare columns of one run rather than runs taken at different times.
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

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "tests" / "data" / "models"
BROKEN = {"truncated.keras", "multi_output.keras"}  # read errors by design: nothing to compare
BUDGET_SECONDS = 0.5

STATIC_PROBE = "import sys; from lossaudit.keras.static import read_model_file; read_model_file(sys.argv[1])"
KERAS_PROBE = "import sys, keras; keras.saving.load_model(sys.argv[1], safe_mode=False)"


def _environment() -> dict[str, str]:
    env = os.environ.copy()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    return env


def _median_subprocess(command: list[str], repeats: int, env: dict[str, str], ok_codes: set[int]) -> float:
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok_codes:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
            raise RuntimeError(f"{Path(command[-1]).name} exited {proc.returncode}: {last}")
    return statistics.median(times)


def _median_in_process(path: Path, repeats: int) -> float:
    from lossaudit.keras.static import read_model_file

    read_model_file(path)  # warm-up: first-call imports (h5py only if a layout needs it)
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        read_model_file(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _lossaudit_command() -> list[str]:
    script = shutil.which("lossaudit", path=str(Path(sys.executable).parent)) or shutil.which("lossaudit")
    return [script] if script else [sys.executable, "-m", "lossaudit"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per static subprocess column")
    parser.add_argument("--in-process-repeats", type=int, default=50)
    parser.add_argument("--keras-repeats", type=int, default=3, help="runs per Keras load (about 6 s each)")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras load column")
    args = parser.parse_args()

    env = _environment()
    fixtures = sorted(p for p in MODELS.iterdir() if p.is_file() and p.name not in BROKEN)
    columns = ("in-process", 11), ("static proc", 12), ("check CLI", 10), ("keras load", 11), ("ratio", 7)
    header = f"{'fixture':<30}" + "".join(f" {title:>{width}}" for title, width in columns)
    print(
        f"median wall time; static proc/check CLI over {args.repeats} runs, keras over {args.keras_repeats}"
    )
    print(header)
    print("-" * len(header))
    worst_cli = 0.0
    for path in fixtures:
        in_process = _median_in_process(path, args.in_process_repeats)
        static_proc = _median_subprocess(
            [sys.executable, "-c", STATIC_PROBE, str(path)], args.repeats, env, {0}
        )
        cli = _median_subprocess(
            [*_lossaudit_command(), "check", "--model", str(path)], args.repeats, env, {0, 1}
        )
        worst_cli = max(worst_cli, cli)
        keras_cell, ratio_cell = "-", "-"
        if not args.no_keras:
            try:
                keras_load = _median_subprocess(
                    [sys.executable, "-c", KERAS_PROBE, str(path)], args.keras_repeats, env, {0}
                )
                keras_cell, ratio_cell = f"{keras_load:.2f} s", f"{keras_load / static_proc:.0f}x"
            except RuntimeError as exc:
                keras_cell = "fails"
                print(f"  ({path.name}: Keras load failed: {exc})", file=sys.stderr)
        print(
            f"{path.name:<30} {in_process * 1000:>8.2f} ms {static_proc:>10.3f} s {cli:>8.3f} s "
            f"{keras_cell:>11} {ratio_cell:>7}"
        )
    verdict = "within" if worst_cli <= BUDGET_SECONDS else "OVER"
    print(f"\nslowest `lossaudit check --model`: {worst_cli:.3f} s ({verdict} the {BUDGET_SECONDS} s budget)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
