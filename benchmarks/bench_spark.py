"""Time the Spark engine against the local engine on the same data and model, with peak memory.

Makes an eval set of ``--rows`` rows and ``--features`` float32 features (one Parquet column each,
row groups of 100k rows) with random labels over 10 classes, and a Keras model
``features -> Dense(64, relu) -> Dense(10, softmax)`` with random weights, compiled with sparse
categorical cross-entropy and ``accuracy``. Then runs ``lossaudit audit`` once per engine, each in
its own process (``--no-log --json``), and samples the resident memory of the process tree every
0.2 s from /proc (Linux): the driver's Python process, the JVM (in local mode it is the driver and
the executors), and the Spark Python workers. Both reports must agree (finding codes, confusion
matrix).

Run: ``python benchmarks/bench_spark.py --rows 1000000`` (add ``--master local[2]``; ``--keep DIR``
keeps the data for another run). Prints one line per engine and writes nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHUNK = 100_000


def make_data(folder: Path, rows: int, features: int) -> tuple[Path, Path]:
    """The model and the Parquet eval file (written chunk by chunk: memory stays flat)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    model_path, data_path = folder / "model.keras", folder / f"eval-{rows}x{features}.parquet"
    if not model_path.exists():
        import keras

        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((features,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.save(model_path)
    if not data_path.exists():
        rng = np.random.default_rng(0)
        names = [f"f{i}" for i in range(features)]
        schema = pa.schema([*(pa.field(n, pa.float32()) for n in names), pa.field("label", pa.int64())])
        with pq.ParquetWriter(data_path, schema) as writer:
            for start in range(0, rows, CHUNK):
                size = min(CHUNK, rows - start)
                x = rng.normal(size=(size, features)).astype(np.float32)
                columns = [pa.array(x[:, i]) for i in range(features)]
                columns.append(pa.array(rng.integers(0, 10, size=size)))
                writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=CHUNK)
    return model_path, data_path


def _tree(root: int) -> dict[int, tuple[str, int]]:
    """pid -> (command name, RSS bytes) for ``root`` and its descendants."""
    parents: dict[int, int] = {}
    info: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        parents[pid] = int(fields.get("PPid", "0").strip())
        rss = fields.get("VmRSS", "0 kB").strip().split()[0]
        info[pid] = (fields.get("Name", "").strip(), int(rss) * 1024)
    keep = {root}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return {pid: info[pid] for pid in keep if pid in info}


def run_engine(engine: str, model: Path, data: Path, out: Path, master: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "lossaudit", "audit", str(model), "--data", str(data)]
    command += ["--label-column", "label", "--no-log", "--json", "--out", str(out)]
    if engine == "spark":
        command += ["--engine", "spark", "--master", master]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peaks = {"driver": 0, "jvm": 0, "workers": 0, "total": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _tree(proc.pid)
            driver = tree.get(proc.pid, ("", 0))[1]
            jvm = sum(rss for pid, (name, rss) in tree.items() if name == "java")
            workers = sum(
                rss for pid, (name, rss) in tree.items() if pid != proc.pid and name.startswith("python")
            )
            for key, value in (("driver", driver), ("jvm", jvm), ("workers", workers)):
                peaks[key] = max(peaks[key], value)
            peaks["total"] = max(peaks["total"], driver + jvm + workers)
            done.wait(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    done.set()
    watcher.join()
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{engine}: exit {proc.returncode}: {stderr.strip()[-2000:]}")
    report = json.loads(stdout)
    return {"seconds": seconds, "peaks": peaks, "report": report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data and model in this folder")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-spark-"))
    folder.mkdir(parents=True, exist_ok=True)
    made = time.perf_counter()
    model, data = make_data(folder, args.rows, args.features)
    size = data.stat().st_size / 1e6
    took = time.perf_counter() - made
    print(f"data: {args.rows} rows x {args.features} features, {size:.0f} MB Parquet ({took:.0f} s)")
    results: dict[str, dict[str, Any]] = {}
    for engine in args.engines.split(","):
        found = run_engine(engine, model, data, folder / f"report-{engine}", args.master)
        results[engine] = found
        peaks = {k: v / 2**20 for k, v in found["peaks"].items()}
        stages = ", ".join(f"{s['name']} {s['seconds']:.0f}" for s in found["report"]["stages"])
        memory = f"driver {peaks['driver']:.0f} MiB"
        if engine == "spark":
            memory += f", JVM {peaks['jvm']:.0f} MiB, Python workers {peaks['workers']:.0f} MiB"
        print(f"{engine}: {found['seconds']:.0f} s wall, peak RSS {memory}; stages (s): {stages}")
    if len(results) == 2:
        local, spark = (results[e]["report"] for e in ("local", "spark"))
        same = (
            local["codes"] == spark["codes"]
            and local["metrics"]["confusion_matrix"] == spark["metrics"]["confusion_matrix"]
        )
        print(f"same codes and confusion matrix: {same} (codes {local['codes']})")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
