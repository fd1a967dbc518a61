"""Wall time of ``lossaudit registry`` against the number of versions, and against auditing the
versions one by one with ``lossaudit audit models:/NAME/VERSION``.

Usage::

    python benchmarks/bench_registry.py [--sizes 2,4,8] [--workers 1,2] [--repeat 1] [--tracking-uri URI]

Without ``--tracking-uri`` the script starts its own ``mlflow server`` on 127.0.0.1 (SQLite
backend and artifact folder in a temporary directory; stopped at the end). It registers 8
versions of tiny digits classifiers (one Dense layer, alternately a correct softmax head and a
broken linear head with ``from_logits=False``) as three models -- ``bench_a`` (2 versions),
``bench_b`` (2) and ``bench_c`` (4) -- so that N = 2, 4, 8 versions are the globs ``bench_a``,
``bench_[ab]`` and ``bench_*``. For each N it times, each as a fresh process started the way a
user starts it:

* ``lossaudit registry --force --workers W`` for each W (every version audited);
* the same command again without ``--force`` (every version skipped: what a nightly rerun costs);
* N separate ``lossaudit audit models:/NAME/VERSION --data ...`` processes, one after the other.

Every audit logs its MLflow run in all modes. The table also shows the largest peak resident
memory any process reported for one audit (from ``--json``), which stays at one model per
worker. Timing belongs here, not in the tests: the machine is shared and wall time is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

SIZES = {2: "bench_a", 4: "bench_[ab]", 8: "bench_*"}

_BUILD = r"""
import sys
from pathlib import Path
import numpy as np, keras, mlflow, mlflow.keras
from sklearn.datasets import load_digits

out = Path(sys.argv[1])
x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
np.savez(out / "digits.npz", x=x, y=y.astype("int64"))
mlflow.set_experiment("bench-training")
models = {}
for i, head in enumerate(("softmax", "linear")):
    keras.utils.set_random_seed(i)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation=head)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    models[head] = model
for name, count in (("bench_a", 2), ("bench_b", 2), ("bench_c", 4)):
    for v in range(count):
        with mlflow.start_run(run_name=f"{name}-{v + 1}"):
            mlflow.keras.log_model(models[("softmax", "linear")[v % 2]], name="model",
                                   registered_model_name=name, pip_requirements=["keras"])
print("registered")
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_server(root: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A 2-process ``mlflow server`` on 127.0.0.1 (job runner off, one worker)."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        str(mlflow_cli) if mlflow_cli.exists() else "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not healthy(uri):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise SystemExit(f"mlflow server did not start; see {root / 'server.log'}")
        time.sleep(0.25)
    return uri, process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass


def lossaudit() -> str:
    beside = Path(sys.executable).with_name("lossaudit")
    found = str(beside) if beside.exists() else shutil.which("lossaudit")
    if found is None:
        raise SystemExit("lossaudit is not installed: pip install -e . first")
    return found


def timed(args: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(args[1:4])} ... exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return elapsed, done.stdout


def time_size(
    n: int,
    worker_counts: list[int],
    script: str,
    common: list[str],
    data: str,
    env: dict[str, str],
    work: Path,
) -> dict[str, float]:
    """One timed round for N versions: the registry job per worker count, its rerun, one by one."""
    row: dict[str, float] = {}
    peak = 0.0
    versions: list[tuple[str, str]] = []
    for w in worker_counts:
        cmd = [script, "registry", "--name", SIZES[n], "--force", "--workers", str(w), "--json", *common]
        seconds, out = timed(cmd, env, work, ok=(0, 1))
        doc = json.loads(out)
        versions = [(v["model"], v["version"]) for v in doc["versions"]]
        peak = max([peak, *(v["peak_rss_mb"] or 0.0 for v in doc["versions"])])
        row[f"registry -w{w}"] = seconds
        print(f"N={n} workers={w}: {seconds:.1f} s", file=sys.stderr)
    cmd = [script, "registry", "--name", SIZES[n], "--json", *common]
    # Every version skipped; the stored fails of the broken heads still gate the job: exit 1.
    row["rerun (skipped)"], _ = timed(cmd, env, work, ok=(1,))
    one_by_one = 0.0
    for name, version in versions:
        cmd = [script, "audit", f"models:/{name}/{version}", "--data", data, "--experiment", "bench"]
        cmd += ["--out", str(work / "one-by-one" / f"{name}-v{version}")]
        seconds, _ = timed(cmd, env, work, ok=(0, 1))
        one_by_one += seconds
    row["one by one"] = one_by_one
    row["peak MiB/audit"] = peak
    print(f"N={n} rerun: {row['rerun (skipped)']:.1f} s; one by one: {one_by_one:.1f} s", file=sys.stderr)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="2,4,8", help="numbers of versions, from 2, 4, 8 (default all)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    parser.add_argument("--tracking-uri", help="an existing server (default: start one on 127.0.0.1)")
    parser.add_argument("--repeat", type=int, default=1, help="timed rounds per size; the median is shown")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(n not in SIZES for n in sizes):
        raise SystemExit(f"--sizes takes values from {sorted(SIZES)}")
    worker_counts = [int(w) for w in args.workers.split(",")]

    work = Path(tempfile.mkdtemp(prefix="lossaudit-bench-registry-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        uri = args.tracking_uri
        if uri is None:
            uri, process = start_server(work)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_ENABLE_ONEDNN_OPTS": "0",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _BUILD, str(work)], env=env, check=True, capture_output=True)
        print(f"registered 8 versions in {time.perf_counter() - start:.0f} s on {uri}", file=sys.stderr)
        data = str(work / "digits.npz")
        script = lossaudit()
        common = ["--data", f"bench_*={data}", "--experiment", "bench", "--out", str(work / "reports")]
        rows = []
        for n in sizes:
            rounds = [
                time_size(n, worker_counts, script, common, data, env, work) for _ in range(args.repeat)
            ]
            row: dict[str, float | int] = {"versions": n}
            for column in rounds[0]:
                row[column] = statistics.median(r[column] for r in rounds)
            rows.append(row)
    finally:
        if process is not None:
            stop_server(process)
        shutil.rmtree(work, ignore_errors=True)

    columns = list(rows[0])
    print(f"cpus: {os.cpu_count()}; seconds of wall time per job (peak resident MiB of one auditing process)")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---:|" * len(columns))
    for row in rows:
        cells = [str(row[c]) if c == "versions" else f"{row[c]:.1f}" for c in columns]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
