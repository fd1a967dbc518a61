"""Start-up stays light: --help, rules and explain import no framework and no numeric library.

Each command runs in a fresh interpreter (an import made by an earlier test would hide one made
by the command) and reports ``sys.modules`` after the command finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FORBIDDEN = (
    "tensorflow",
    "keras",
    "tf_keras",
    "mlflow",
    "great_expectations",
    "numpy",
    "sklearn",
    "pandas",
    "scipy",
    "pyspark",
)

PROBE = """
import json, sys
from lossaudit.cli import main
sys.argv = ["lossaudit", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
top = sorted({name.split(".")[0] for name in sys.modules})
sys.stdout.write("\\n@@" + json.dumps({"code": code, "modules": top}) + "\\n")
"""


def _modules_after(*args: str) -> tuple[int, set[str], str]:
    env = os.environ.copy()
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    output, _, report = proc.stdout.rpartition("\n@@")
    doc = json.loads(report)
    return doc["code"], set(doc["modules"]), output


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("rules",),
        ("rules", "--json"),
        ("explain", "LA101"),
        ("explain", "double-softmax"),
        ("check", "--help"),
    ],
    ids=lambda a: " ".join(a),
)
def test_light_commands_import_nothing_heavy(args: tuple[str, ...]) -> None:
    code, modules, output = _modules_after(*args)
    assert code == 0
    assert output.strip()  # the command did print something
    heavy = sorted(set(FORBIDDEN) & modules)
    assert heavy == [], f"`lossaudit {' '.join(args)}` imported {heavy}"
    assert "lossaudit" in modules and "typer" in modules


def test_probe_is_not_blind(tmp_path: Path) -> None:
    """A head-only check needs no numpy either; reading a labels file does import it."""
    head = ("check", "--units", "3", "--activation", "softmax", "--loss", "sparse_categorical_crossentropy")
    code, modules, _ = _modules_after(*head)
    assert code == 0
    assert not set(FORBIDDEN) & modules
    labels = tmp_path / "y.npy"
    np.save(labels, np.array([0, 2, 1]))  # numpy in this process says nothing about the child's
    code, modules, _ = _modules_after(*head, "--labels", str(labels))
    assert code == 0
    assert "numpy" in modules
    assert not {"tensorflow", "keras", "mlflow", "great_expectations"} & modules


LIBRARY_PROBE = """
import json, sys
import lossaudit
import lossaudit.keras.static
names = (lossaudit.audit, lossaudit.check, lossaudit.compare, lossaudit.AuditReport, lossaudit.BadInputError)
top = sorted({name.split(".")[0] for name in sys.modules})
sys.stdout.write(json.dumps({"names": len(names), "modules": top}))
"""


def test_import_lossaudit_imports_nothing_heavy() -> None:
    """``import lossaudit`` and its public names (``lossaudit.audit``, ...) load no framework and
    no numeric library: each heavy import waits until an audit runs."""
    env = os.environ.copy()
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.run(
        [sys.executable, "-c", LIBRARY_PROBE], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["names"] == 5
    heavy = sorted(set(FORBIDDEN) & set(doc["modules"]))
    assert heavy == [], f"`import lossaudit` imported {heavy}"
