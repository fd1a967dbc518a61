"""A whole ``lossaudit audit`` against the least any audit must do: load the model, predict once.

For each row count (10k, 100k, 1M by default) it writes an eval set of random 784-feature float32
rows with 10-class index labels and a 784-256-10 MLP with random weights (relu, softmax; sparse
categorical cross-entropy, accuracy; no training), then runs, each in a fresh process:

* ``limit``: ``import keras``; ``keras.saving.load_model``; read x whole; ``model.predict(x,
  batch_size=256)`` -- the floor: import, load, one forward pass;
* ``audit``: ``lossaudit audit MODEL --data DATA --no-log --out DIR`` -- every stage (static read,
  labels and Great Expectations, load, the one pass, scikit-learn recompute, compare, the report
  folder with its HTML and charts), MLflow logging off.

``--format`` is how the eval set is stored:

* ``npz`` (the default): an uncompressed ``.npz`` as ``np.savez`` writes it (``x``, ``y``); the
  limit reads x with ``np.load(data)["x"]``;
* ``parquet``: one float32 column per feature (``f0`` ... ``f783``) and an int64 ``label`` column,
  in row groups of 50,000 rows (snappy, pyarrow's defaults otherwise); the audit gets
  ``--label-column label`` and the limit reads x as a user would, whole:
  ``pd.read_parquet(data).drop(columns=["label"]).to_numpy(dtype=np.float32)``;
* ``csv``: the same columns as text (``DataFrame.to_csv``; about 8.5 KB a row, so 1M rows take
  some 8.5 GB), read by the limit with ``pd.read_csv`` likewise.

Wall seconds come from the parent around the child (interpreter start included); CPU seconds
(user + system) and peak memory are the child's own ``ru_utime + ru_stime`` and ``ru_maxrss``
(``os.wait4``), so no measurement counts another's. The per-row cost is the slope of wall (and
CPU) time between consecutive row counts.

Run from the repository root in the project venv (the data take 3.2 GB of disk at 1M rows as
``.npz``, 4.7 GB as Parquet; the audit of a table also spills x, 3.1 GB at 1M rows, to ``TMPDIR``)::

    python benchmarks/bench_one_pass.py                        # 10k, 100k, 1M rows
    python benchmarks/bench_one_pass.py --rows 10000 100000 --repeat 3
    python benchmarks/bench_one_pass.py --src /other/checkout/src   # audit another lossaudit
    python benchmarks/bench_one_pass.py --format parquet --rows 1000000

The machine is shared: compare columns of one run rather than runs taken at different times.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES = 784
HIDDEN = 256
CLASSES = 10
BATCH = 256
WRITE_ROWS = 50_000
"""Rows generated and written at a time (a Parquet row group): the 1M-row file is never whole in
this process."""
LABEL = "label"
"""The label column of a Parquet or CSV eval set."""
FORMATS = ("npz", "parquet", "csv")

MAKE_MODEL = f"""
import sys, keras
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(({FEATURES},)),
    keras.layers.Dense({HIDDEN}, activation="relu"),
    keras.layers.Dense({CLASSES}, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.save(sys.argv[1])
"""

LIMIT = f"""
import sys
import numpy as np
import keras
model = keras.saving.load_model(sys.argv[1])
x = np.load(sys.argv[2])["x"]
model.predict(x, batch_size={BATCH}, verbose=0)
"""

LIMIT_TABLE = f"""
import sys
import numpy as np
import pandas as pd
import keras
model = keras.saving.load_model(sys.argv[1])
read = pd.read_csv if sys.argv[2].endswith(".csv") else pd.read_parquet
x = read(sys.argv[2]).drop(columns=["{LABEL}"]).to_numpy(dtype=np.float32)
model.predict(x, batch_size={BATCH}, verbose=0)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float
    cpu_seconds: float
    """User + system CPU time of the child: less sensitive than wall time to other jobs' load."""


def _environment(src: Path) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_ENABLE_ONEDNN_OPTS": "0",
            "KERAS_BACKEND": "tensorflow",
            "CUDA_VISIBLE_DEVICES": "-1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONPATH": str(src),
        }
    )
    return env


class TooLarge(RuntimeError):
    """A child grew past ``--max-rss-mib`` and was killed (the machine's memory is shared)."""


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(command: list[str], env: dict[str, str], ok_codes: set[int], max_rss_mib: float) -> Run:
    """Wall seconds, CPU seconds and peak resident memory (MiB) of one fresh child process.

    The child is killed, and :class:`TooLarge` raised, when its resident memory passes
    ``max_rss_mib`` (polled every 0.1 s).
    """
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if _rss_mib(child.pid) > max_rss_mib:
                child.kill()
                os.wait4(child.pid, 0)
                child.returncode = -9
                raise TooLarge(f"passed {max_rss_mib:,.0f} MiB: killed")
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode not in ok_codes:
            errors.seek(0)
            last = (errors.read().decode(errors="replace").strip().splitlines() or ["?"])[-1][:200]
            raise RuntimeError(f"{' '.join(command[:4])}... exited {child.returncode}: {last}")
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)  # maxrss in KiB


def write_data(path: Path, rows: int, fmt: str = "npz") -> None:
    """The eval set as ``fmt`` (see the module docstring), written a block of rows at a time."""
    if fmt == "npz":
        _write_npz(path, rows)
    else:
        _write_table(path, rows, fmt)


def _write_npz(path: Path, rows: int) -> None:
    """An uncompressed .npz with x (rows, 784) float32 and y (rows,) int64, written in pieces."""
    import numpy as np
    from numpy.lib import format as npy_format

    rng = np.random.default_rng(rows)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            npy_format.write_array_header_2_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": (rows, FEATURES)}
            )
            for start in range(0, rows, WRITE_ROWS):
                block = rng.normal(size=(min(WRITE_ROWS, rows - start), FEATURES)).astype(np.float32)
                member.write(block.tobytes())
        with archive.open("y.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, rng.integers(0, CLASSES, rows, dtype=np.int64))


def _write_table(path: Path, rows: int, fmt: str) -> None:
    """A Parquet file (a row group per block) or a CSV file of 784 float32 feature columns and an
    int64 label column; x has the .npz's values (the same generator), y its own."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(rows)
    labels = np.random.default_rng(rows + 1)
    names = [f"f{i}" for i in range(FEATURES)]
    schema = pa.schema([(name, pa.float32()) for name in names] + [(LABEL, pa.int64())])
    writer = pq.ParquetWriter(path, schema) if fmt == "parquet" else None
    try:
        with path.open("w") if fmt == "csv" else contextlib.nullcontext() as text:
            for start in range(0, rows, WRITE_ROWS):
                count = min(WRITE_ROWS, rows - start)
                block = np.asfortranarray(rng.normal(size=(count, FEATURES)).astype(np.float32))
                y = labels.integers(0, CLASSES, count, dtype=np.int64)
                if writer is not None:
                    columns = [pa.array(block[:, i]) for i in range(FEATURES)] + [pa.array(y)]
                    writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=count)
                else:
                    import pandas as pd

                    frame = pd.DataFrame(block, columns=names)
                    frame[LABEL] = y
                    frame.to_csv(text, header=start == 0, index=False)
    finally:
        if writer is not None:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median shown)")
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the lossaudit source to audit with")
    parser.add_argument("--workdir", type=Path, default=None, help="where the model and data go")
    parser.add_argument("--skip-limit", action="store_true", help="audit only")
    parser.add_argument("--format", choices=FORMATS, default="npz", help="how the eval set is stored")
    parser.add_argument(
        "--roc-auc",
        choices=("exact", "bounds"),
        default="exact",
        help="the audit's --roc-auc: keep the predictions, or fold each batch into counts",
    )
    parser.add_argument(
        "--max-rss-mib", type=float, default=14_000, help="kill a child that grows past this (shared machine)"
    )
    args = parser.parse_args()
    env = _environment(args.src.resolve())
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-one-pass-", dir=args.workdir) as folder:
        work = Path(folder)
        model = work / "mlp.keras"
        subprocess.run([python, "-c", MAKE_MODEL, str(model)], env=env, check=True)
        print(
            f"lossaudit from {args.src}; {FEATURES}-{HIDDEN}-{CLASSES} MLP, batch {BATCH}; "
            f"eval data as {args.format}; --roc-auc {args.roc_auc}",
            flush=True,
        )
        print(
            "| rows | limit s | audit s | ratio | limit CPU s | audit CPU s | ratio "
            "| limit peak MiB | audit peak MiB | ratio |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
        results: dict[int, tuple[Run | None, Run]] = {}
        for rows in args.rows:
            data = work / f"eval_{rows}.{args.format}"
            write_data(data, rows, args.format)
            limits: list[Run] = []
            audits: list[Run] = []
            out = work / f"report_{rows}"
            audit = [python, "-m", "lossaudit", "audit", str(model), "--data", str(data), "--no-log"]
            if args.format != "npz":
                audit += ["--label-column", LABEL]
            audit += ["--roc-auc", args.roc_auc]
            audit.append("--out")
            # A limit that outgrows the machine is itself a result: the audit still runs, and the
            # row says the limit did not fit.
            limit_killed: str | None = None
            try:
                for _ in range(args.repeat):
                    if not args.skip_limit and limit_killed is None:
                        script = LIMIT if args.format == "npz" else LIMIT_TABLE
                        limit_command = [python, "-c", script, str(model), str(data)]
                        try:
                            limits.append(measure(limit_command, env, {0}, args.max_rss_mib))
                        except TooLarge as exc:
                            limit_killed = str(exc)
                    audits.append(measure([*audit, str(out)], env, {0, 1}, args.max_rss_mib))
            except TooLarge as exc:
                print(f"| {rows:,} | audit {exc} |", flush=True)
                continue
            finally:
                data.unlink()
            limit = _median(limits) if limits and limit_killed is None else None
            audit_run = _median(audits)
            results[rows] = (limit, audit_run)
            print(_row(rows, limit, audit_run, limit_killed), flush=True)
        _slopes(results)


def _median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.peak_mib for r in runs),
        statistics.median(r.cpu_seconds for r in runs),
    )


def _row(rows: int, limit: Run | None, audit: Run, limit_killed: str | None = None) -> str:
    if limit is None:
        missing = "-" if limit_killed is None else "killed"
        peak = "-" if limit_killed is None else f"{limit_killed}"
        return (
            f"| {rows:,} | {missing} | {audit.seconds:.1f} | - | {missing} | {audit.cpu_seconds:.1f} | - "
            f"| {peak} | {audit.peak_mib:,.0f} | - |"
        )
    return (
        f"| {rows:,} | {limit.seconds:.1f} | {audit.seconds:.1f} | {audit.seconds / limit.seconds:.2f}x "
        f"| {limit.cpu_seconds:.1f} | {audit.cpu_seconds:.1f} | {audit.cpu_seconds / limit.cpu_seconds:.2f}x "
        f"| {limit.peak_mib:,.0f} | {audit.peak_mib:,.0f} | {audit.peak_mib / limit.peak_mib:.2f}x |"
    )


def _slopes(results: dict[int, tuple[Run | None, Run]]) -> None:
    """Per-row cost between consecutive row counts: microseconds of wall (and CPU) time per row."""
    counts = sorted(results)
    if len(counts) < 2:
        return
    print()
    print("| rows | limit us/row | audit us/row | ratio | limit CPU us/row | audit CPU us/row | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for low, high in itertools.pairwise(counts):
        span = high - low
        audit_low, audit_high = results[low][1], results[high][1]
        audit = (audit_high.seconds - audit_low.seconds) / span * 1e6
        audit_cpu = (audit_high.cpu_seconds - audit_low.cpu_seconds) / span * 1e6
        limit_low, limit_high = results[low][0], results[high][0]
        if limit_low is None or limit_high is None:
            print(f"| {low:,} -> {high:,} | - | {audit:.1f} | - | - | {audit_cpu:.1f} | - |")
            continue
        limit = (limit_high.seconds - limit_low.seconds) / span * 1e6
        limit_cpu = (limit_high.cpu_seconds - limit_low.cpu_seconds) / span * 1e6
        print(
            f"| {low:,} -> {high:,} | {limit:.1f} | {audit:.1f} | {audit / limit:.2f}x "
            f"| {limit_cpu:.1f} | {audit_cpu:.1f} | {audit_cpu / limit_cpu:.2f}x |"
        )


if __name__ == "__main__":
    main()
