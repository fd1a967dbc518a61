"""Pipeline files: parsing, environment expansion, paths, the typed schema, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from lossaudit.core.config import RuleConfig
from lossaudit.errors import BadInputError
from lossaudit.pipeline.config import expand, load_pipeline
from lossaudit.pipeline.schema import pipeline_json_schema, schema_text

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


def test_engine_and_master_default_per_file_and_per_audit(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
kind: audit
engine: spark
master: spark://head:7077
audits:
  - {name: a, model: m.keras, data: eval/*.parquet, label_columns: y}
  - {name: b, model: m.keras, data: d.npz, engine: local}
  - {name: c, model: m.keras, data: d.parquet, label_columns: y, master: "local[2]"}
""",
    )
    audits = load_pipeline(path).audits
    assert [(a.engine, a.master) for a in audits] == [
        ("spark", "spark://head:7077"),
        ("local", "spark://head:7077"),
        ("spark", "local[2]"),
    ]
    plain = write(tmp_path, "kind: audit\naudits: [{model: m.keras, data: d.npz}]\n", "plain.yaml")
    assert [(a.engine, a.master) for a in load_pipeline(plain).audits] == [("local", None)]
    bad = write(tmp_path, "kind: audit\nengine: dask\naudits: [{model: m.keras, data: d.npz}]\n", "bad.yaml")
    with pytest.raises(BadInputError, match=r"engine: must be local or spark, got 'dask'"):
        load_pipeline(bad)


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
        ("kind: audit\nthresholds: {accuracy: high}\naudits: [{model: m, data: d}]\n", "expected a number"),
        ("kind: audit\naudits: [{model: m, data: d}, {model: m, data: e}]\n", "audit names must be unique"),
        ("kind: audit\naudits: [{model: m, data: d, retrain: true}]\n", "needs at least 'train: PATH'"),
        (
            "kind: audit\naudits: [{model: m, data: d, reported: {measured_on: far}}]\n",
            "must be this or other",
        ),
        ("kind: audit\naudits: [{model: m, data: d, reported: {n: 5}}]\n", "with measured_on: other"),
        ("kind: [unclosed\n", "is not valid YAML"),
        ("- a list\n", "the file must be a mapping of keys, got ['a list']"),
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


# --- the typed schema: every key, strictly -----------------------------------------------------

AUDIT = "kind: audit\naudits:\n  - {model: m.keras, data: d.npz, %s}\n"
RETRAIN = AUDIT % "retrain: {train: t.npz, %s}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # The examples: each used to exit 4 (ValueError/TypeError) or log anyway.
        (RETRAIN % "epochs: ten", "audits[0].retrain.epochs: expected an integer, got 'ten'"),
        ("kind: registry\nregistry: {workers: two}\n", "registry.workers: expected an integer, got 'two'"),
        (AUDIT % "label_columns: 7", "audits[0].label_columns: expected a name or a list of names, got 7"),
        ("kind: demo\nscenarios: 5\n", "scenarios: expected a name or a list of names, got 5"),
        ("kind: demo\nlog: {enabled: maybe}\n", "log.enabled: expected true or false, got 'maybe'"),
        # Integers: not floats, not booleans, within range.
        (RETRAIN % "epochs: 10.5", "audits[0].retrain.epochs: expected an integer, got 10.5"),
        (RETRAIN % "batch_size: true", "audits[0].retrain.batch_size: expected an integer, got true"),
        (RETRAIN % "epochs: 0", "audits[0].retrain.epochs: expected an integer from 1 to 100000, got 0"),
        (RETRAIN % "seed: -1", "audits[0].retrain.seed: expected an integer from 0 to 4294967295, got -1"),
        (RETRAIN % f"epochs: {'9' * 400}", "epochs: expected an integer from 1 to 100000, got an integer of"),
        ("kind: registry\nregistry: {workers: 100000}\n", "expected an integer from 1 to 256, got 100000"),
        (AUDIT % "reported: {n: 0, measured_on: other}", "reported.n: expected an integer from 1 to"),
        # Numbers: finite; flags: true or false; names and paths: strings.
        (
            AUDIT % "reported: {accuracy: .nan}",
            "audits[0].reported.accuracy: expected a finite number, got nan",
        ),
        (
            AUDIT % f"reported: {{accuracy: {'9' * 400}}}",
            "accuracy: expected a finite number, got an integer",
        ),
        (AUDIT % "unsafe: 'sure'", "audits[0].unsafe: expected true or false, got 'sure'"),
        (AUDIT % "unsafe: 1", "audits[0].unsafe: expected true or false, got 1"),
        (
            "kind: audit\naudits: [{model: 5, data: d}]\n",
            "audits[0].model: expected a string, got 5; quote it",
        ),
        ("kind: audit\naudits: [{model: '', data: d}]\n", "audits[0].model: expected a path, got an empty"),
        ("kind: demo\nout: null\n", "out: expected a string, got null"),
        ("kind: demo\nlog: {tracking_uri: 5}\n", "log.tracking_uri: expected a string, got 5"),
        ("kind: registry\nregistry: {data: {a: 1}}\n", "registry.data.a: expected a string, got 1"),
        ("kind: registry\nregistry: {force: 'no way'}\n", "registry.force: expected true or false"),
        (
            "kind: audit\nthresholds: {1: 0.5}\naudits: [{model: m, data: d}]\n",
            "thresholds: key 1: expected a",
        ),
        # Sections and lists.
        ("kind: demo\nlog: 5\n", "log: expected a mapping, got 5"),
        ("kind: audit\naudits: 5\n", "kind 'audit' needs a non-empty 'audits' list, got 5"),
        ("kind: audit\n", "kind 'audit' needs a non-empty 'audits' list"),
        ("kind: audit\naudits: [5]\n", "audits[0]: expected a mapping, got 5"),
        (AUDIT % "retrain: {}", "audits[0].retrain needs 'train'"),
        (RETRAIN % "colour: red, size: 3", "unknown key(s) in audits[0].retrain: colour, size"),
        ("kind: demo\ncolour: red\n", "unknown key(s): colour"),
        ("kind: demo\naudits: []\n", "key(s) audits do not apply to kind 'demo' (they belong to kind audit)"),
        ("kind: [a]\n", "'kind' must be one of audit, demo, registry, got ['a']"),
        ("", "'kind' must be one of audit, demo, registry, got null"),
        # Rule keys: typed here, judged by RuleConfig.
        ("kind: demo\nselect: 5\n", "select: expected a name or a list of names, got 5"),
        ("kind: demo\nalpha: abc\n", "alpha: expected a number, got 'abc'"),
        ("kind: demo\nalpha: 0.9\n", "alpha: must be a number in (0, 0.5), got 0.9"),
        # Several problems: the first is named, the others counted.
        (RETRAIN % "epochs: ten, seeds: many", "epochs: expected an integer, got 'ten' (and 1 more problem)"),
    ],
)
def test_wrong_types_name_the_key_path(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as info:
        load_pipeline(path, base=RuleConfig())
    line = str(info.value)
    assert line.startswith(f"pipeline {path}") and message in line, line
    assert "\n" not in line and len(line) < 400


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
        (f"kind: audit\nx: {'9' * 5000}\n".encode(), "is not valid YAML"),
        (b"kind: demo\nname: 2024-13-45\n", "is not valid YAML: month must be in 1..12"),
        (b"kind: demo\nx: " + b"[" * 1000 + b"]" * 1000 + b"\n", "nested too deeply"),
        (
            b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + b"".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n".encode()
                for p, n in zip("abcde", "bcdef", strict=True)
            )
            + b"kind: demo\n",
            "holds more than 100000 values (YAML aliases?)",
        ),
    ],
    ids=["binary", "5000-digit-int", "bad-date", "deep", "alias-bomb"],
)
def test_unreadable_files_are_one_line(tmp_path: Path, text: bytes, problem: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(text)
    with pytest.raises(BadInputError) as info:
        load_pipeline(path, base=RuleConfig())
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_a_folder_is_not_a_pipeline_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="pipeline file is a folder, not a file"):
        load_pipeline(tmp_path)


def test_flags_are_never_truthy_text(tmp_path: Path) -> None:
    """``enabled: "false"`` used to be bool("false") is True: logged anyway."""
    for value, enabled in [("'false'", False), ('"False"', False), ("'off'", False), ("no", False)]:
        config = load_pipeline(write(tmp_path, f"kind: demo\nlog: {{enabled: {value}}}\n"), base=RuleConfig())
        assert config.log.enabled is enabled, value
    config = load_pipeline(write(tmp_path, "kind: demo\nlog: {enabled: 'true'}\n"), base=RuleConfig())
    assert config.log.enabled is True


def test_expanded_text_is_read_as_the_typed_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``${VAR}`` expands to text: the text of an integer, number or flag is that value."""
    monkeypatch.setenv("EPOCHS", "12")
    monkeypatch.setenv("LOG", "false")
    monkeypatch.delenv("UNSAFE", raising=False)
    text = (
        "kind: audit\nlog: {enabled: '${LOG}'}\nthresholds: {accuracy: '${MIN:-0.75}'}\n"
        "audits:\n  - {model: m, data: d, unsafe: '${UNSAFE:-true}',"
        " retrain: {train: t, epochs: '${EPOCHS}', seeds: '${SEEDS:-2}'}}\n"
    )
    config = load_pipeline(write(tmp_path, text), base=RuleConfig())
    entry = config.audits[0]
    assert (entry.epochs, entry.seeds, entry.unsafe, entry.retrain) == (12, 2, True, True)
    assert config.log.enabled is False
    assert config.thresholds == {"accuracy": 0.75}
    monkeypatch.setenv("EPOCHS", "twelve")
    with pytest.raises(BadInputError, match=r"retrain\.epochs: expected an integer, got 'twelve'"):
        load_pipeline(write(tmp_path, text), base=RuleConfig())


def test_defaults_and_nulls(tmp_path: Path) -> None:
    text = (
        "kind: audit\nlog:\nthresholds:\nselect:\n"
        "audits: [{model: dir/m.keras, data: d, label_columns: null, reported: {accuracy: '0.5'}}]\n"
    )
    config = load_pipeline(write(tmp_path, text), base=RuleConfig())
    entry = config.audits[0]
    assert (config.name, config.out, config.thresholds, config.log.enabled) == (
        "p",
        "lossaudit-reports",
        {},
        True,
    )
    assert (entry.name, entry.label_columns, entry.reported, entry.retrain, entry.epochs) == (
        "m",
        (),
        {"accuracy": 0.5},
        False,
        10,
    )
    assert config.rules.select == ("ALL",)
    demo = load_pipeline(write(tmp_path, "kind: demo\nscenarios: [all]\n"), base=RuleConfig())
    assert demo.scenarios == ()
    named = load_pipeline(write(tmp_path, "kind: demo\nscenarios: double-softmax\n"), base=RuleConfig())
    assert named.scenarios == ("double-softmax",)
    registry = load_pipeline(write(tmp_path, "kind: registry\n"), base=RuleConfig())
    assert registry.registry is not None and registry.registry.workers == 1


# --- the JSON Schema for editors ---------------------------------------------------------------

SCHEMA_FILE = ROOT / "docs" / "pipeline.schema.json"


def test_committed_json_schema_is_the_generated_one() -> None:
    """Regenerate with: python -m lossaudit.pipeline.schema docs/pipeline.schema.json"""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()
    jsonschema.Draft202012Validator.check_schema(pipeline_json_schema())


@pytest.mark.parametrize("name", ["ci.yaml", "demo.yaml", "scheduled.yaml"])
def test_shipped_pipelines_satisfy_the_json_schema(name: str) -> None:
    """Before expansion, as an editor sees them (``${VAR:-0.5}`` where a number goes)."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    doc = yaml.safe_load((ROOT / "pipelines" / name).read_text(encoding="utf-8"))
    assert [e.message for e in validator.iter_errors(doc)] == []


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        (RETRAIN % "epochs: 3, seeds: 2", True),
        (RETRAIN % "epochs: '${EPOCHS:-3}'", True),
        ("kind: demo\nlog: {enabled: false}\n", True),
        (RETRAIN % "epochs: ten", False),
        (RETRAIN % "epochs: 0", False),
        ("kind: registry\nregistry: {workers: two}\n", False),
        (AUDIT % "label_columns: 7", False),
        ("kind: demo\nscenarios: 5\n", False),
        ("kind: demo\nlog: {enabled: maybe}\n", False),
        (AUDIT % "colour: red", False),
        ("kind: demo\naudits: [{model: m, data: d}]\n", False),
        ("kind: nonsense\n", False),
    ],
)
def test_json_schema_and_loader_agree(tmp_path: Path, text: str, valid: bool) -> None:
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    assert validator.is_valid(yaml.safe_load(text)) is valid
    path = write(tmp_path, text)
    if valid:
        load_pipeline(path, base=RuleConfig())
    else:
        with pytest.raises(BadInputError):
            load_pipeline(path, base=RuleConfig())


def test_roc_auc_per_audit_defaults_to_exact_and_refuses_other_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kind: audit\naudits:\n  - {name: a, model: m.keras, data: d.npz, roc_auc: bounds}\n"
        "  - {name: b, model: m.keras, data: d.npz}\n",
    )
    assert [a.roc_auc for a in load_pipeline(path).audits] == ["bounds", "exact"]
    bad = write(
        tmp_path, "kind: audit\naudits: [{model: m.keras, data: d.npz, roc_auc: approx}]\n", "bad.yaml"
    )
    with pytest.raises(BadInputError, match=r"roc_auc: must be exact or bounds, got 'approx'"):
        load_pipeline(bad)
