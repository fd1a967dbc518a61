"""Hostile model files: one model, one reading (issue 9, item 4).

A file two readers can read as two models is refused before anything loads, with and without
``--unsafe``: exit 2, one stderr line, no traceback, and the Lambda payload never runs. The
payload is a Keras 3 Lambda whose function touches a marker file; the positive control shows that
the same Lambda, loaded on its own with ``--unsafe``, does touch it (after the warning).

The hostile files:

* ``polyglot.keras`` / ``polyglot.h5``: a clean HDF5 model (tests/data/models/keras3_functional.h5)
  with the Lambda ``.keras`` zip appended (Keras loads a ``.keras`` name as the zip, the HDF5
  reader sees the clean model);
* ``polyglot_plain.keras``: the same with a plain (other) model appended: the rules would judge one
  model and the live audit run another;
* ``h5_named.keras``: an HDF5 model named ``.keras`` (Keras said "File not found");
* ``zip_named.h5`` / ``zip_named.hdf5``: a ``.keras`` zip named as HDF5.

The in-process tests check the private copy: the live load reads exactly the bytes the static
check read, and a copy changed after the check is never loaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lossaudit.errors import BadInputError

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
CLEAN_H5 = ROOT / "tests" / "data" / "models" / "keras3_functional.h5"
PLAIN_KERAS = ROOT / "tests" / "data" / "models" / "sigmoid1_cce.keras"
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "KERAS_BACKEND": "tensorflow",
}
ENV.pop("LOSSAUDIT_DEBUG", None)

BUILD_LAMBDA = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import keras

    target, marker = Path(sys.argv[1]), Path(sys.argv[2])
    # The payload: touching the marker is the proof that the file's Python code ran.
    payload = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")
    inputs = keras.Input((4,))
    hidden = keras.layers.Lambda(payload, name="payload")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    model.save(target)
    """
)


def _console_script() -> str:
    script = Path(sys.executable).parent / "lossaudit"
    found = str(script) if script.exists() else shutil.which("lossaudit")
    if found is None:
        pytest.skip("the lossaudit console script is not installed")
    return found


class Files:
    """The hostile files, their eval data and the payload's marker."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.marker = folder / "PAYLOAD_RAN"
        self.lambda_keras = folder / "lambda.keras"
        self.data = folder / "eval.npz"

    def path(self, name: str) -> Path:
        return self.folder / name


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("hostile")
    built = Files(folder)
    subprocess.run(
        [sys.executable, "-c", BUILD_LAMBDA, str(built.lambda_keras), str(built.marker)],
        env=ENV,
        check=True,
        capture_output=True,
        timeout=300,
    )
    built.marker.unlink(missing_ok=True)  # building the functional model called the Lambda once
    clean = CLEAN_H5.read_bytes()
    payload = built.lambda_keras.read_bytes()
    for name in ("polyglot.keras", "polyglot.h5", "polyglot.bin"):
        built.path(name).write_bytes(clean + payload)
    built.path("polyglot_plain.keras").write_bytes(clean + PLAIN_KERAS.read_bytes())
    shutil.copyfile(CLEAN_H5, built.path("h5_named.keras"))
    shutil.copyfile(built.lambda_keras, built.path("zip_named.h5"))
    shutil.copyfile(PLAIN_KERAS, built.path("zip_named.hdf5"))
    rng = np.random.default_rng(0)
    np.savez(
        built.data,
        x=rng.normal(size=(40, 4)).astype(np.float32),
        y=np.eye(10, dtype=np.float32)[np.arange(40) % 10],
    )
    return built


def _audit(files: Files, model: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    files.marker.unlink(missing_ok=True)
    command = [_console_script(), "audit", str(model), "--data", str(files.data), "--out", str(out)]
    return subprocess.run(
        [*command, "--no-log", "--no-gx", *extra],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=files.folder,
    )


REFUSED = [
    ("polyglot.keras", "refusing a polyglot: an HDF5 file (at byte 0) that is also a zip archive"),
    ("polyglot.h5", "refusing a polyglot: an HDF5 file (at byte 0) that is also a zip archive"),
    ("polyglot.bin", "refusing a polyglot: an HDF5 file (at byte 0) that is also a zip archive"),
    ("polyglot_plain.keras", "refusing a polyglot: an HDF5 file (at byte 0) that is also a zip archive"),
    ("h5_named.keras", "is an HDF5 file, not a .keras zip: rename it to .h5"),
    ("zip_named.h5", "is a .keras zip, not an HDF5 file: rename it to .keras"),
    ("zip_named.hdf5", "is a .keras zip, not an HDF5 file: rename it to .keras"),
]


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize(("name", "why"), REFUSED, ids=[n for n, _ in REFUSED])
def test_a_file_two_readers_read_differently_is_refused_before_anything_loads(
    files: Files, tmp_path: Path, name: str, why: str, unsafe: bool
) -> None:
    out = tmp_path / "out"
    done = _audit(files, files.path(name), out, *(["--unsafe"] if unsafe else []))
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lossaudit: error: {files.path(name)}"), lines
    assert why in lines[0], lines
    assert "Traceback" not in done.stdout + done.stderr
    assert "WARNING" not in done.stderr  # nothing was about to load: no --unsafe warning either
    assert not files.marker.exists(), "the Lambda payload ran"
    assert not out.exists(), "a refused audit wrote a report"


def test_refusal_happens_before_tensorflow_is_imported(files: Files) -> None:
    """The refusal needs no Keras: in-process, neither the static read nor the copy imports it."""
    probe = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from lossaudit.errors import BadInputError
        from lossaudit.sources.local import LocalFileSource
        try:
            LocalFileSource(Path(sys.argv[1])).read_static()
        except BadInputError as exc:
            print(exc)
        print(sorted(m for m in ("tensorflow", "keras", "tf_keras", "h5py") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(files.path("polyglot.keras"))],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == "[]"
    assert "refusing a polyglot" in done.stdout


@pytest.mark.keras
def test_positive_control_the_payload_runs_under_unsafe_after_the_warning(
    files: Files, tmp_path: Path
) -> None:
    """The marker mechanism works: the Lambda file alone, with --unsafe, runs its code, and the
    warning is on stderr before anything the load prints."""
    done = _audit(files, files.lambda_keras, tmp_path / "out", "--unsafe")
    assert done.returncode in (0, 1), done.stderr
    assert files.marker.exists(), "the positive control's payload did not run"
    ours = [line for line in done.stderr.splitlines() if line.strip()]
    assert ours[0].startswith("lossaudit: WARNING: --unsafe: deserializing Lambda layer(s) payload in ")
    refused = _audit(files, files.lambda_keras, tmp_path / "out2")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "lossaudit: error: model has Lambda layer(s) payload; refusing to deserialize code: "
        "pass --unsafe to load it anyway"
    ]
    assert not files.marker.exists()


# --- in process: the private copy ----------------------------------------------------------------


@pytest.fixture
def no_keras_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Path, bytes, bool]]]:
    """Replace Keras 3's load: record (path, bytes, safe_mode) of what it was asked to load."""
    from lossaudit.keras import live

    loaded: list[tuple[Path, bytes, bool]] = []

    def fake(src: Path, shown: Path, *, safe_mode: bool, on_note: Any) -> object:
        loaded.append((src, src.read_bytes(), safe_mode))
        return object()

    monkeypatch.setattr(live, "_load_with_keras3", fake)
    yield loaded


def test_the_live_load_reads_the_bytes_the_static_check_read(
    files: Files, tmp_path: Path, no_keras_load: list[tuple[Path, bytes, bool]]
) -> None:
    """The original is replaced by the Lambda model after the static check: the load still gets
    the checked bytes (from the private copy), never the new file."""
    from lossaudit.sources.local import LocalFileSource

    model = tmp_path / "model.keras"
    shutil.copyfile(PLAIN_KERAS, model)
    source = LocalFileSource(model)
    static = source.read_static()
    assert static.lambda_layers == ()
    shutil.copyfile(files.lambda_keras, model)  # swapped between the check and the load
    source.load(static, unsafe=True, on_note=lambda line: None)
    [(src, data, safe_mode)] = no_keras_load
    assert data == PLAIN_KERAS.read_bytes()
    assert src != model and src.name == "model.keras"
    assert safe_mode, "no Lambda in the checked bytes: safe mode stays on even with --unsafe"
    assert source.context() == {"model_sha256": static.sha256}
    assert not src.parent.exists(), "the private copy is removed after the load"


def test_a_copy_changed_after_the_check_is_not_loaded(
    tmp_path: Path, no_keras_load: list[tuple[Path, bytes, bool]]
) -> None:
    from lossaudit.keras.live import load_model_file
    from lossaudit.keras.static import snapshot_model_file

    model = tmp_path / "model.keras"
    shutil.copyfile(PLAIN_KERAS, model)
    with snapshot_model_file(model) as snapshot:
        static = snapshot.read_static()
        snapshot.path.write_bytes(snapshot.path.read_bytes() + b"\0")
        with pytest.raises(BadInputError, match=r"changed after its static check .*not loading it"):
            load_model_file(model, static=static, snapshot=snapshot)
    assert no_keras_load == []


def test_a_caller_static_read_of_other_bytes_is_not_trusted(
    files: Files, tmp_path: Path, no_keras_load: list[tuple[Path, bytes, bool]]
) -> None:
    """A caller that read the file itself (MLflow sources do) and passes that read: the load
    reads its own copy again and refuses when the two reads disagree."""
    from lossaudit.keras.live import load_model_file
    from lossaudit.keras.static import read_model_file

    model = tmp_path / "model.keras"
    shutil.copyfile(PLAIN_KERAS, model)
    static = read_model_file(model)
    shutil.copyfile(files.lambda_keras, model)
    with pytest.raises(BadInputError, match="changed between its static check and the load"):
        load_model_file(model, static=static, unsafe=True)
    assert no_keras_load == []


def test_unsafe_with_the_callers_empty_lambda_list_still_reads_the_copy(
    files: Files, capsys: pytest.CaptureFixture[str], no_keras_load: list[tuple[Path, bytes, bool]]
) -> None:
    """With --unsafe the copy is always read again: a caller's list that missed the Lambda does
    not turn safe mode off silently; the warning names it before the load."""
    from lossaudit.keras.live import load_model_file

    load_model_file(files.lambda_keras, lambda_layers=(), unsafe=True)
    [(_, _, safe_mode)] = no_keras_load
    assert not safe_mode
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("lossaudit: WARNING: --unsafe: deserializing Lambda layer(s) payload in ")


def test_no_private_copy_is_left_behind(
    files: Files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lossaudit.sources.local import LocalFileSource

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    for name, _ in REFUSED:
        with pytest.raises(BadInputError):
            LocalFileSource(files.path(name)).read_static()
    source = LocalFileSource(PLAIN_KERAS)
    source.read_static()
    assert len(list(scratch.iterdir())) == 1  # held for the load
    source.read_static()
    assert len(list(scratch.iterdir())) == 1  # a second read replaces the first copy
    del source
    import gc

    gc.collect()
    assert list(scratch.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    from lossaudit.keras.static import read_model_file, snapshot_model_file

    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for reader in (read_model_file, snapshot_model_file):
        with pytest.raises(BadInputError, match="not a regular file"):
            reader(fifo)
