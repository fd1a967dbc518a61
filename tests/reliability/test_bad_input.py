"""The bad-input matrix: every row runs the installed ``lossaudit`` console script in a fresh
folder and must end with exit code 2, exactly one line on stderr starting ``lossaudit: error:``,
no traceback anywhere, and no file written outside the report folder the command was given.

The rows cover ``check``, ``compare``, ``run`` (pipeline files), ``explain`` and ``audit`` inputs
that are refused before TensorFlow loads. They run a few at a time (each is a process that
imports numpy and pandas at most), prefetched for the rows pytest selected.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests" / "data" / "pipelines" / "iris_softmax_sparse.keras"
WORKERS = 3
HUGE = "9" * 400


def _console_script() -> str:
    script = Path(sys.executable).parent / "lossaudit"
    found = str(script) if script.exists() else shutil.which("lossaudit")
    if found is None:
        pytest.skip("the lossaudit console script is not installed")
    return found


# --- input files -------------------------------------------------------------------------------

Content = bytes | str | Callable[[Path], None]


def _npy(array: np.ndarray, *, allow_pickle: bool = False) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as fh:
            np.save(fh, array, allow_pickle=allow_pickle)

    return write


def _npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    return write


def _forged_npy(shape: tuple[int, ...]) -> bytes:
    """A .npy whose header promises far more data than the file holds."""
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _corrupt_npz(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(1000))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("y.npy", buf.getvalue())
    data = bytearray(path.read_bytes())
    data[80:100] = b"\xff" * 20  # inside the deflated stream
    path.write_bytes(bytes(data))


def _truncated_npy(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([0, 1, 2, 1]))
    path.write_bytes(buf.getvalue()[:-10])


def _folder(path: Path) -> None:
    path.mkdir()


GARBAGE = bytes(range(256)) * 4
LABELS_OK = _npy(np.array([0, 1, 2, 1]))
PREDS_OK = _npy(np.full((4, 3), 1 / 3))
AUDIT = "kind: audit\nout: out\naudits:\n  - {model: m.keras, data: d.npz, %s}\n"
RETRAIN = AUDIT % "retrain: {train: t.npz, %s}"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    files: dict[str, Content] = field(default_factory=dict)
    message: str = ""
    """A part of the one stderr line."""
    out: str | None = None
    """The report folder the command was given: the only place it may write."""


def check(id: str, labels: Content, message: str, *extra: str, name: str = "labels.csv") -> Case:
    return Case(id, ("check", "--units", "3", "--labels", name, *extra), {name: labels}, message)


def pipeline(id: str, text: str | bytes, message: str, *extra: str) -> Case:
    return Case(id, ("run", "p.yaml", *extra), {"p.yaml": text}, message, out="out")


CASES = [
    # check: labels files and heads
    check("check-400-digit-label", f"y\n{HUGE}\n0\n1\n", "too large for a 64-bit float"),
    Case(
        "check-units-20-digits",
        ("check", "--units", "99999999999999999999", "--labels", "labels.csv"),
        {"labels.csv": "y\n0\n1\n"},
        "output units must be at most 100000",
    ),
    Case("check-units-over-cap", ("check", "--units", "100001", "--activation", "softmax"), {}, "at most"),
    check("check-labels-folder", _folder, "is a directory, not a file"),
    check("check-empty-csv", "", "labels file is empty"),
    check("check-header-only-csv", "y\n", "labels are empty"),
    check("check-garbage-npy", GARBAGE, "not a .npy file", name="labels.npy"),
    check("check-forged-npy-header", _forged_npy((10**12,)), "is truncated: its header", name="labels.npy"),
    check("check-truncated-npy", _truncated_npy, "truncated", name="labels.npy"),
    check("check-npz-without-y", _npz(a=np.zeros(3), b=np.ones(3)), "expected one named y", name="l.npz"),
    check("check-corrupt-npz", _corrupt_npz, "not a readable .npz", name="labels.npz"),
    check("check-nan-labels", _npy(np.array([0.0, np.nan, 1.0])), "NaN in 1 row", name="labels.npy"),
    check("check-inf-labels", "y\n0\ninf\n", "infinite"),
    check("check-complex-labels", _npy(np.array([1 + 2j, 0j])), "complex", name="labels.npy"),
    check("check-scalar-labels", _npy(np.array(3)), "single scalar", name="labels.npy"),
    check("check-rank-3-labels", _npy(np.zeros((2, 2, 2))), "rank 3", name="labels.npy"),
    check(
        "check-pickled-objects",
        _npy(np.array(["a", 1], dtype=object), allow_pickle=True),
        "holds Python objects",
        name="labels.npy",
    ),
    check("check-string-labels", "y\ncat\ndog\n", "labels are strings"),
    check("check-ragged-csv", "y\n0\n1,2,3\n", "not a readable table"),
    check("check-binary-csv", GARBAGE, "not a readable table"),
    check("check-garbage-parquet", b"PAR1" + GARBAGE + b"PAR1", "not a readable table", name="l.parquet"),
    check("check-two-columns", "a,b\n0,1\n1,0\n", "name the label column(s)"),
    check("check-unknown-column", "y\n0\n1\n", "no column matches 'nope'", "--label-column", "nope"),
    check("check-missing-config", "y\n0\n1\n", "config file not found", "--config", "nope.toml"),
    check("check-unknown-rule", "y\n0\n1\n", "unknown rule code(s) LA999", "--select", "LA999"),
    Case("check-missing-labels", ("check", "--units", "3", "--labels", "nope.csv"), {}, "not found"),
    Case(
        "check-spec-huge-units",
        ("check", "--spec", "spec.yaml"),
        {"spec.yaml": "units: 1000000000000\nactivation: softmax\n"},
        "at most 100000",
    ),
    Case("check-spec-units-ten", ("check", "--spec", "spec.yaml"), {"spec.yaml": "units: ten\n"}, "'units'"),
    # compare: labels against predictions
    Case(
        "compare-mismatched-rows",
        ("compare", "--labels", "y.npy", "--predictions", "p.npy"),
        {"y.npy": LABELS_OK, "p.npy": _npy(np.full((5, 3), 1 / 3))},
        "4 rows but predictions have 5",
    ),
    Case(
        "compare-400-digit-label",
        ("compare", "--labels", "y.csv", "--predictions", "p.npy"),
        {"y.csv": f"y\n{HUGE}\n0\n1\n2\n", "p.npy": PREDS_OK},
        "too large for a 64-bit float",
    ),
    Case(
        "compare-huge-units",
        ("compare", "--labels", "y.npy", "--predictions", "p.npy", "--units", "99999999999999999999"),
        {"y.npy": LABELS_OK, "p.npy": PREDS_OK},
        "at most 100000",
    ),
    Case(
        "compare-garbage-predictions",
        ("compare", "--labels", "y.npy", "--predictions", "p.npy"),
        {"y.npy": LABELS_OK, "p.npy": GARBAGE},
        "not a .npy file",
    ),
    Case(
        "compare-forged-predictions",
        ("compare", "--labels", "y.npy", "--predictions", "p.npy"),
        {"y.npy": LABELS_OK, "p.npy": _forged_npy((10**6, 10**6))},
        "is truncated",
    ),
    Case(
        "compare-bad-reported",
        ("compare", "--labels", "y.npy", "--predictions", "p.npy", "--reported", "accuracy=abc"),
        {"y.npy": LABELS_OK, "p.npy": PREDS_OK},
        "is not a number",
    ),
    # run: pipeline files
    pipeline(
        "run-epochs-ten", RETRAIN % "epochs: ten", "audits[0].retrain.epochs: expected an integer, got 'ten'"
    ),
    pipeline(
        "run-workers-two",
        "kind: registry\nout: out\nregistry: {workers: two}\n",
        "registry.workers: expected an integer, got 'two'",
    ),
    pipeline("run-label-columns-7", AUDIT % "label_columns: 7", "audits[0].label_columns: expected a name"),
    pipeline(
        "run-scenarios-5", "kind: demo\nout: out\nscenarios: 5\n", "scenarios: expected a name or a list"
    ),
    pipeline(
        "run-enabled-maybe", "kind: demo\nout: out\nlog: {enabled: maybe}\n", "log.enabled: expected true"
    ),
    pipeline(
        "run-batch-size-float", RETRAIN % "batch_size: 10.5", "batch_size: expected an integer, got 10.5"
    ),
    pipeline("run-reported-nan", AUDIT % "reported: {accuracy: .nan}", "expected a finite number, got nan"),
    pipeline("run-unknown-key", AUDIT % "colour: red", "unknown key(s) in audits[0]: colour"),
    pipeline("run-no-kind", "out: out\n", "'kind' must be one of audit, demo, registry"),
    pipeline(
        "run-unknown-scenario",
        "kind: demo\nscenarios: [nope]\nlog: {enabled: false}\n",
        "unknown scenario 'nope'",
    ),
    pipeline("run-binary-file", GARBAGE, "is not UTF-8 text"),
    pipeline("run-5000-digit-integer", f"kind: demo\nout: out\nx: {'9' * 5000}\n", "is not valid YAML"),
    pipeline("run-unset-variable", "kind: demo\nout: ${LOSSAUDIT_TEST_NOT_SET}\n", "but it is not set"),
    pipeline(
        "run-yaml-alias-bomb",
        "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True))
        + "kind: demo\nout: out\n",
        "YAML aliases?",
    ),
    pipeline(
        "run-missing-config", "kind: demo\nout: out\n", "config file not found", "--config", "nope.toml"
    ),
    Case("run-missing-file", ("run", "nope.yaml"), {}, "pipeline file not found"),
    Case("run-folder", ("run", "p.yaml"), {"p.yaml": _folder}, "is a folder, not a file"),
    # explain
    Case("explain-unknown-code", ("explain", "LA999"), {}, "unknown rule 'LA999'"),
    Case("explain-empty-code", ("explain", ""), {}, "unknown rule ''"),
    Case("explain-400-digits", ("explain", HUGE), {}, "unknown rule"),
    # log, registry, demo
    Case("log-missing-folder", ("log", "nope"), {}, "report folder not found"),
    Case("log-not-a-report", ("log", "d"), {"d/notes.txt": b"x"}, "has no report.json"),
    Case(
        "registry-bogus-tracking-uri",
        ("registry", "--tracking-uri", "bogus://x"),
        {},
        "MLflow has no tracking store for it",
    ),
    Case(
        "registry-promote-latest",
        ("registry", "--promote-alias", "latest", "--tracking-uri", "sqlite:///r.db"),
        {},
        "'latest' is reserved by MLflow",
    ),
    Case("demo-unknown-scenario", ("demo", "--scenario", "nope"), {}, "unknown scenario 'nope'"),
    # audit: refused before TensorFlow loads; --out is the only place it may write
    Case(
        "audit-npz-without-y",
        ("audit", str(MODEL), "--data", "d.npz", "--out", "out", "--no-log"),
        {"d.npz": _npz(x=np.zeros((4, 4), dtype=np.float32))},
        "expected one named y or labels or y_true",
        out="out",
    ),
    Case(
        "audit-retrain-without-train",
        ("audit", str(MODEL), "--data", "d.npz", "--retrain", "--out", "out"),
        {"d.npz": _npz(x=np.zeros((4, 4), dtype=np.float32), y=np.array([0, 1, 2, 1]))},
        "--retrain needs training data",
        out="out",
    ),
    Case(
        "audit-missing-model",
        ("audit", "nope.keras", "--data", "d.npz", "--out", "out"),
        {"d.npz": _npz(x=np.zeros((4, 4), dtype=np.float32), y=np.array([0, 1, 2, 1]))},
        "model file not found",
        out="out",
    ),
    Case(
        "audit-string-features",
        ("audit", str(MODEL), "--data", "d.npz", "--out", "out", "--no-log"),
        {"d.npz": _npz(x=np.array([["a", "b", "c", "d"]] * 4), y=np.array([0, 1, 2, 1]))},
        "features are not numeric (dtype <U1)",
        out="out",
    ),
    Case(
        "audit-out-under-a-file",
        ("audit", str(MODEL), "--data", "d.npz", "--out", "f.txt/out", "--no-log"),
        {
            "d.npz": _npz(x=np.zeros((4, 4), dtype=np.float32), y=np.array([0, 1, 2, 1])),
            "f.txt": b"a file",
        },
        "which is a file",
        out="f.txt/out",
    ),
    Case(
        "audit-bogus-tracking-uri",
        ("audit", str(MODEL), "--data", "d.npz", "--out", "out", "--tracking-uri", "bogus://x"),
        {"d.npz": _npz(x=np.zeros((4, 4), dtype=np.float32), y=np.array([0, 1, 2, 1]))},
        "MLflow has no tracking store for it",
        out="out",
    ),
]


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    written: frozenset[str]
    """Paths created under the working folder, relative to it."""
    seconds: float


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOSSAUDIT_", "MLFLOW_"))}
    env.pop("PYTHONSTARTUP", None)
    # A default MLflow store would be ./mlflow.db: a write the folder check sees.
    env.update(
        HOME=str(home),
        MPLCONFIGDIR=str(home / "mpl"),
        MLFLOW_DISABLE_TELEMETRY="true",
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_ENABLE_ONEDNN_OPTS="0",
        CUDA_VISIBLE_DEVICES="-1",
    )
    return env


def _prepare(case: Case, folder: Path) -> None:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            content(path)


def _run(script: str, case: Case, folder: Path, home: Path) -> Outcome:
    before = _tree(folder)
    start = time.perf_counter()
    proc = subprocess.run(
        [script, *case.args],
        cwd=folder,
        env=_environment(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.perf_counter() - start
    written = frozenset(_tree(folder) - before)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, written, seconds)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run every selected row once, a few at a time."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and hasattr(item, "callspec")
        and "case" in item.callspec.params
    ]
    script = _console_script()
    home = tmp_path_factory.mktemp("home")
    jobs = []
    for case in selected:
        folder = tmp_path_factory.mktemp(case.id)
        _prepare(case, folder)
        jobs.append((case, folder))
    with ThreadPoolExecutor(WORKERS) as pool:
        done = pool.map(lambda job: (job[0].id, _run(script, job[0], job[1], home)), jobs)
        return dict(done)


def test_rows_are_unique_and_enough() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids)
    commands = {c.args[0] for c in CASES}
    assert len(CASES) >= 30 and {"check", "compare", "run", "explain"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    shown = f"exit {outcome.returncode}\nstdout: {outcome.stdout[-2000:]}\nstderr: {outcome.stderr[-2000:]}"
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert outcome.returncode == 2, shown
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, shown
    assert lines[0].startswith("lossaudit: error: "), shown
    assert "internal error" not in lines[0], shown
    assert case.message in lines[0], shown
    outside = sorted(p for p in outcome.written if case.out is None or not Path(p).is_relative_to(case.out))
    assert outside == [], f"wrote outside the report folder: {outside}"
