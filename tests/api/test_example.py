"""``examples/python_api.py`` runs offline and prints what the README's "From Python" section shows:
every line of that section's console blocks, run and model ids aside, is a line the example
printed; MLflow's files stay in the store folder (none in the working folder)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow.conftest import copy_store, migrated_empty_db  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.keras, pytest.mark.mlflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python_api.py"
README = ROOT / "README.md"
HEX_ID = re.compile(r"[0-9a-f]{32}")
"""An MLflow run id, or the hex of a logged model's ``m-...`` id: new in every run."""


def readme_console_lines() -> list[str]:
    """The output lines of the console blocks under "## From Python" (not the ``$`` command)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line and not line.startswith("$ ")]


def masked(line: str) -> str:
    return HEX_ID.sub("<id>", line.rstrip())


@pytest.fixture
def example() -> Iterator[Any]:
    """The example as a module (``main(argv)``); MLflow's tracking URI restored after."""
    import mlflow

    spec = importlib.util.spec_from_file_location("python_api_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        mlflow.set_tracking_uri(None)


def test_the_example_prints_what_the_readme_shows(
    example: Any,
    migrated_empty_db: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    copy_store(migrated_empty_db, store)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    example.main(["--store", str(store)])
    captured = capsys.readouterr()
    printed = {masked(line) for line in (captured.out + captured.err).splitlines()}
    shown = readme_console_lines()
    assert len(shown) >= 15  # the three sections' outputs
    missing = [line for line in shown if masked(line) not in printed]
    assert missing == [], f"README lines the example did not print: {missing}"
    # The section headers and each way's closing line are there: the example ran to its end.
    assert "== 3. lossaudit.keras.AuditCallback" in printed and "training losses: [0.0, 0.0, 0.0]" in printed
    # MLflow's artifacts went beside the store, not into the working folder.
    assert list(work.iterdir()) == []
    assert list((store / "mlruns").rglob("report.json"))
