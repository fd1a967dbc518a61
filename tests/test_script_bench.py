"""benchmarks/bench_script_check.py on a small tree (60 scripts, the seeds among them): it still
generates, checks and reports.

The figures themselves are not asserted (a shared machine makes them noise): only that each row
has a wall-time median within its min and max, and a CPU time, and that the generated tree is the
corpus's scripts with every 25th a notebook.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_script_check.py"
SECONDS = r"([\d.]+) s"
ROW = re.compile(rf"^\| ([^|]+) \| {SECONDS} \| {SECONDS} \| {SECONDS} \| {SECONDS} \|$")


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_script_check", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path(sys.executable).with_name("lossaudit").exists(), reason="no lossaudit script")
def test_benchmark_reports_wall_and_cpu_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load()
    assert bench.main(["--files", "60", "--runs", "1", "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    files = sorted(p.suffix for p in (tmp_path / "tree").rglob("train_*"))
    assert files.count(".ipynb") == 2 and files.count(".py") == 58
    summary = re.search(r"^60 files, \d+ lines; (\d+) models judged, (\d+) findings \(exit 1\)$", out, re.M)
    assert summary is not None and int(summary.group(1)) > 0 and int(summary.group(2)) > 0
    rows = [m for m in map(ROW.match, out.splitlines()) if m]
    assert [m[1].split()[0] for m in rows] == ["in-process", "`lossaudit", "`lossaudit"]
    for row in rows:
        median, lo, hi, cpu = (float(row[i]) for i in range(2, 6))
        assert lo <= median <= hi and cpu > 0
    assert re.search(r"per file after start-up \(process\): -?[\d.]+ ms wall, -?[\d.]+ ms CPU", out)
