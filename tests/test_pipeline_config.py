"""Pipeline files: parsing, environment expansion, paths, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossaudit.errors import BadInputError
from lossaudit.pipeline.config import expand, load_pipeline

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_pipelines_parse() -> None:
    ci = load_pipeline(ROOT / "pipelines" / "ci.yaml")
    assert (ci.kind, ci.fail_on, ci.log.experiment) == ("audit", "error", "lossaudit-ci")
    assert [a.name for a in ci.audits] == ["model"]
    # Relative paths of a file in pipelines/ resolve against the project root.
    assert Path(ci.resolve(ci.audits[0].model)).is_file()
    assert Path(ci.resolve(ci.audits[0].data)).is_file()
    assert ci.thresholds == {"accuracy": 0.5}
    demo = load_pipeline(ROOT / "pipelines" / "demo.yaml")
    assert (demo.kind, demo.scenarios) == ("demo", ())
    scheduled = load_pipeline(ROOT / "pipelines" / "scheduled.yaml")
    assert scheduled.kind == "registry" and scheduled.registry is not None
    assert (scheduled.registry.workers, scheduled.registry.promote_alias) == (2, "audited")
    assert dict(scheduled.registry.data) == {"iris*": "tests/data/pipelines/iris_eval.npz"}


def test_environment_expansion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODEL", "models:/digits@champion")
    monkeypatch.setenv("MIN_ACCURACY", "0.93")
    monkeypatch.delenv("DATA", raising=False)
    config = load_pipeline(ROOT / "pipelines" / "ci.yaml")
    assert config.audits[0].model == "models:/digits@champion"
    assert config.resolve(config.audits[0].model) == "models:/digits@champion"  # URIs pass through
    assert config.audits[0].data == "tests/data/pipelines/iris_eval.npz"
    assert config.thresholds == {"accuracy": 0.93}
    with pytest.raises(BadInputError, match=r"\$\{NOT_SET_ANYWHERE\} but it is not set"):
        expand({"a": ["${NOT_SET_ANYWHERE}"]})


def test_audit_entries_and_retrain(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
kind: audit
audits:
  - model: m.keras
    data: d.npz
    reported: {accuracy: 0.9979, from_source_run: false}
    retrain: {train: t.npz, epochs: 3, seed: 7, seeds: 2}
  - name: second
    model: /abs/m2.keras
    data: d.npz
    label_columns: [y0, y1]
    reported: {val_accuracy: 0.91, measured_on: other, n: 1200}
""",
    )
    config = load_pipeline(path)
    first, second = config.audits
    assert (first.name, first.reported, first.reported_from_source_run) == ("m", {"accuracy": 0.9979}, False)
    assert (first.retrain, first.train, first.epochs, first.seed) == (True, "t.npz", 3, 7)
    assert config.resolve(first.model) == str(tmp_path / "m.keras")
    assert config.resolve(second.model) == "/abs/m2.keras"
    assert second.label_columns == ("y0", "y1")
    assert (first.reported_on, first.reported_n, first.seeds) == ("this", None, 2)
    assert (second.reported, second.reported_on, second.reported_n) == ({"val_accuracy": 0.91}, "other", 1200)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: audit\naudits: []\n", "needs a non-empty 'audits' list"),
        ("kind: nonsense\n", "'kind' must be one of audit, demo, registry"),
        ("kind: audit\nfail_on: fatal\naudits: [{model: m, data: d}]\n", "fail_on: 'fatal' is not one of"),
        ("kind: audit\naudits: [{model: m}]\n", "audits[0] needs 'data'"),
        ("kind: audit\naudits: [{model: m, data: d, colour: red}]\n", "unknown key(s) in audits[0]: colour"),
        ("kind: audit\nthresholds: {accuracy: high}\naudits: [{model: m, data: d}]\n", "must be a number"),
        ("kind: audit\naudits: [{model: m, data: d}, {model: m, data: e}]\n", "audit names must be unique"),
        ("kind: audit\naudits: [{model: m, data: d, retrain: true}]\n", "needs at least 'train: PATH'"),
        (
            "kind: audit\naudits: [{model: m, data: d, reported: {measured_on: far}}]\n",
            "must be this or other",
        ),
        ("kind: audit\naudits: [{model: m, data: d, reported: {n: 5}}]\n", "with measured_on: other"),
        ("kind: [unclosed\n", "is not valid YAML"),
        ("- a list\n", "'the file' must be a mapping"),
    ],
)
def test_bad_files_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BadInputError) as info:
        load_pipeline(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="pipeline file not found"):
        load_pipeline(tmp_path / "nope.yaml")
