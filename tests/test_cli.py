"""The CLI contract: check, compare, rules, explain; --json; exit codes; one-line errors.

Most commands run in-process with Typer's CliRunner; the bad-input cases run the installed console
script in a subprocess, because "exactly one line on stderr, no traceback" is about the real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.core.catalogue import RULES
from lossaudit.core.labels import to_one_hot
from lossaudit.core.report import SCHEMA_VERSION

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def console_script() -> list[str]:
    """The installed ``lossaudit`` next to this interpreter (else ``python -m lossaudit``)."""
    script = Path(sys.executable).with_name("lossaudit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lossaudit"]


def start_script(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*console_script(), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def seed_files(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A 10-class eval set whose reported 'accuracy' was elementwise binary accuracy (the seed)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, size=400)
    logits = rng.normal(size=(400, 10)) + 2.5 * np.eye(10)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels, predictions = tmp_path / "y_onehot.npy", tmp_path / "probs.npy"
    np.save(labels, to_one_hot(y, 10))
    np.save(predictions, probs)
    return labels, predictions, y, probs


# --- rules and explain -----------------------------------------------------------------------


def test_rules_json_lists_the_catalogue() -> None:
    result = invoke("rules", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "pass" and doc["findings"] == []
    assert len(doc["rules"]) >= 15
    assert [r["code"] for r in doc["rules"]] == [r.code for r in RULES]
    assert {"code", "name", "severity", "title", "why", "fix", "families"} <= set(doc["rules"][0])


def test_rules_text_table() -> None:
    result = invoke("rules")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["code", "severity", "name", "title"]
    assert len(lines) == len(RULES) + 1
    assert lines[1].startswith("LA101  error    categorical-crossentropy-on-one-unit")


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_explain_every_rule_by_code_and_name(rule: Any) -> None:
    by_code = invoke("explain", rule.code)
    by_name = invoke("explain", rule.name)
    assert by_code.exit_code == by_name.exit_code == 0
    assert by_code.stdout == by_name.stdout
    page = by_code.stdout
    assert page.startswith(f"# {rule.name} ({rule.code})\n")
    assert f"Severity: {rule.severity.value}." in page
    assert rule.title in page
    assert "## Why it is wrong" in page and "## Fix" in page
    for line in rule.fix.splitlines():
        assert "    " + line in page  # the whole fix, as indented code
    doc = json.loads(invoke("explain", rule.code.lower(), "--json").stdout)
    assert doc["rule"]["code"] == rule.code and doc["verdict"] == "pass" and doc["findings"] == []


# --- check -------------------------------------------------------------------------------------


def test_check_one_unit_sigmoid_cce_fails_with_la101() -> None:
    result = invoke("check", "--units", "1", "--activation", "sigmoid", "--loss", "categorical_crossentropy")
    assert result.exit_code == 1
    assert "LA101 error" in result.stdout
    assert "verdict: fail (1 error, 0 warning, 0 info; failing at error)" in result.stdout
    # The whole multi-line fix is shown, indented under the finding.
    rule_fix = next(r.fix for r in RULES if r.code == "LA101")
    assert len(rule_fix.splitlines()) > 1
    for line in rule_fix.splitlines():
        assert "        " + line in result.stdout.splitlines()


def test_check_json_la101() -> None:
    result = invoke(
        "check", "--units", "1", "--activation", "sigmoid", "--loss", "categorical_crossentropy", "--json"
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["verdict"] == "fail"
    assert [(f["code"], f["severity"], f["title"]) for f in doc["findings"]] == [
        ("LA101", "error", "categorical cross-entropy on a 1-unit output")
    ]


def test_check_ten_class_softmax_with_one_hot_labels_passes(tmp_path: Path) -> None:
    labels = tmp_path / "onehot.npy"
    np.save(labels, to_one_hot(np.arange(50) % 10, 10))
    result = invoke(
        "check",
        "--units",
        "10",
        "--activation",
        "softmax",
        "--loss",
        "categorical_crossentropy",
        "--labels",
        str(labels),
        "--json",
    )
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "pass" and doc["findings"] == []
    assert doc["labels"]["encoding"] == "one_hot" and doc["labels"]["class_counts"] == [5] * 10
    assert doc["context"]["labels_file"] == str(labels)


def test_check_labels_that_do_not_fit_are_findings(tmp_path: Path) -> None:
    labels = tmp_path / "y.npy"
    np.save(labels, np.array([0, 3, 1, 2]))
    result = invoke(
        "check",
        "--units",
        "3",
        "--activation",
        "softmax",
        "--loss",
        "categorical_crossentropy",
        "--labels",
        str(labels),
    )
    assert result.exit_code == 1
    assert "LA204 error" in result.stdout
    assert "labels: invalid, shape [4], K = 4" in result.stdout


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_check_with_spec_file(tmp_path: Path, suffix: str) -> None:
    spec = tmp_path / f"head.{suffix}"
    head = {"units": 10, "activation": "softmax", "loss": "binary_crossentropy", "metrics": ["accuracy"]}
    if suffix == "json":
        spec.write_text(json.dumps(head))
    else:
        spec.write_text("units: 10\nactivation: softmax\nloss: binary_crossentropy\nmetrics: [accuracy]\n")
    keras3 = invoke("check", "--spec", str(spec), "--json")
    assert keras3.exit_code == 0  # LA103 is a warning
    assert [f["code"] for f in json.loads(keras3.stdout)["findings"]] == ["LA103"]
    legacy_spec = tmp_path / "legacy.json"
    legacy_spec.write_text(json.dumps(head | {"keras_family": "legacy"}))
    legacy = invoke("check", "--spec", str(legacy_spec), "--json")
    assert legacy.exit_code == 1
    assert [f["code"] for f in json.loads(legacy.stdout)["findings"]] == ["LA103", "LA401"]
    # --keras-family overrides what the file says (a file cannot tell eager from graph mode).
    overridden = invoke("check", "--spec", str(spec), "--keras-family", "legacy", "--json")
    assert overridden.exit_code == 1
    doc = json.loads(overridden.stdout)
    assert doc["head"]["keras_family"] == "legacy"
    assert doc["context"]["keras_family_from"] == "--keras-family"
    assert [f["code"] for f in doc["findings"]] == ["LA103", "LA401"]


def test_fail_on_warning() -> None:
    args = ["check", "--units", "10", "--activation", "softmax", "--loss", "binary_crossentropy"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args, "--fail-on", "warning").exit_code == 1
    # LA305 on a hinge loss is info: right in some settings.
    assert invoke("check", "--units", "1", "--activation", "sigmoid", "--loss", "hinge").exit_code == 0
    assert (
        invoke(
            "check", "--units", "1", "--activation", "sigmoid", "--loss", "hinge", "--fail-on", "info"
        ).exit_code
        == 1
    )


def test_check_flags_for_family_and_metrics() -> None:
    result = invoke(
        "check",
        "--units",
        "10",
        "--activation",
        "softmax",
        "--loss",
        "binary_crossentropy",
        "--metric",
        "accuracy",
        "--keras-family",
        "legacy",
    )
    assert result.exit_code == 1
    assert "'accuracy' resolves to BinaryAccuracy (loss is binary_crossentropy" in result.stdout
    assert "LA401 error" in result.stdout


@pytest.mark.parametrize(
    ("writer", "extra"),
    [
        ("npz", []),
        ("csv", ["--label-column", "label"]),
        ("parquet", ["--label-column", "label"]),
        ("csv-onehot", ["--label-column", "class_*"]),
    ],
)
def test_label_file_formats(tmp_path: Path, writer: str, extra: list[str]) -> None:
    y = np.array([0, 2, 1, 2, 0])
    frame = pd.DataFrame({"feature": np.arange(5.0), "label": y})
    if writer == "npz":
        path = tmp_path / "data.npz"
        np.savez(path, x=np.zeros((5, 2)), y=y)
    elif writer == "csv":
        path = tmp_path / "data.csv"
        frame.to_csv(path, index=False)
    elif writer == "parquet":
        path = tmp_path / "data.parquet"
        frame.to_parquet(path)
    else:
        path = tmp_path / "onehot.csv"
        pd.DataFrame(to_one_hot(y, 3).astype(int), columns=["class_0", "class_1", "class_2"]).to_csv(
            path, index=False
        )
    loss = "categorical_crossentropy" if writer == "csv-onehot" else "sparse_categorical_crossentropy"
    result = invoke(
        "check",
        "--units",
        "3",
        "--activation",
        "softmax",
        "--loss",
        loss,
        "--labels",
        str(path),
        *extra,
        "--json",
    )
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["labels"]["class_counts"] == [2, 1, 2]
    assert doc["labels"]["encoding"] == ("one_hot" if writer == "csv-onehot" else "index")


# --- compare -----------------------------------------------------------------------------------


def test_compare_names_elementwise_binary_accuracy(tmp_path: Path) -> None:
    labels, predictions, y, probs = seed_files(tmp_path)
    elementwise = float(np.mean((probs > 0.5) == to_one_hot(y, 10)))
    reported = f"{elementwise:.4f}"
    result = invoke(
        "compare",
        "--labels",
        str(labels),
        "--predictions",
        str(predictions),
        "--reported",
        f"accuracy={reported}",
        "--json",
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    (comp,) = doc["comparisons"]
    argmax = accuracy_score(y, probs.argmax(axis=1))
    assert comp["status"] == "wrong_definition"
    assert comp["matches"][0]["key"] == "elementwise_binary_0.5"
    assert comp["matches"][0]["label"] == "elementwise binary accuracy at 0.5 over 10 outputs"
    assert comp["correct"]["key"] == "argmax"
    assert comp["correct"]["value"] == argmax  # exactly sklearn's number
    assert doc["metrics"]["values"]["accuracy"] == argmax
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [("LA503", "error")]
    assert doc["findings"][0]["title"] == "a reported metric is another definition than the task needs"
    assert doc["verdict"] == "fail"
    text = invoke(
        "compare",
        "--labels",
        str(labels),
        "--predictions",
        str(predictions),
        "--reported",
        f"accuracy={reported}",
    )
    assert (
        f"[wrong_definition] (user) reported accuracy {reported} matches elementwise binary accuracy at 0.5 "
        f"over 10 outputs ({elementwise:.4f}); argmax accuracy is {argmax:.4f}; "
        f"difference {float(reported) - argmax:+.4f}"
    ) in text.stdout


def test_compare_true_number_passes(tmp_path: Path) -> None:
    labels, predictions, y, probs = seed_files(tmp_path)
    argmax = accuracy_score(y, probs.argmax(axis=1))
    result = invoke(
        "compare",
        "--labels",
        str(labels),
        "--predictions",
        str(predictions),
        "--reported",
        f"val_accuracy={argmax:.4f}",
        "--reported",
        "loss=0.31",
        "--units",
        "10",
        "--json",
    )
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [c["status"] for c in doc["comparisons"]] == ["agrees", "not_compared"]
    assert doc["findings"] == []
    assert doc["metrics"]["task"] == "multiclass" and doc["metrics"]["n_classes"] == 10


def test_compare_logits_and_constant_model(tmp_path: Path) -> None:
    y = np.array([0, 1, 1, 1, 0, 1])
    labels, predictions = tmp_path / "y.npy", tmp_path / "logits.npy"
    np.save(labels, y)
    np.save(predictions, np.full((6, 1), 0.3))  # logit 0.3 -> P = 0.57 for every sample
    result = invoke(
        "compare", "--labels", str(labels), "--predictions", str(predictions), "--from-logits", "--json"
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [f["code"] for f in doc["findings"]] == ["LA501"]
    assert doc["metrics"]["task"] == "binary"
    assert doc["metrics"]["values"]["accuracy"] == pytest.approx(4 / 6)
    assert doc["head"]["activation"] == "linear" and doc["head"]["units"] == 1


def test_compare_text_output(tmp_path: Path) -> None:
    labels, predictions, _, _ = seed_files(tmp_path)
    result = invoke("compare", "--labels", str(labels), "--predictions", str(predictions))
    assert result.exit_code == 0
    assert "recomputed (multiclass, n = 400, K = 10):" in result.stdout
    assert "no findings" in result.stdout
    assert result.stdout.rstrip().endswith("verdict: pass (0 error, 0 warning, 0 info; failing at error)")


# --- help, version, bad input -----------------------------------------------------------------


def test_help_documents_exit_codes_and_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("check", "compare", "rules", "explain", "Exit codes: 0 pass; 1 findings"):
        assert word in result.stdout
    assert invoke("--version").stdout.startswith("lossaudit ")


@pytest.mark.parametrize("command", ["check", "compare", "audit", "run"])
def test_judging_commands_take_the_rule_configuration_flags(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    for flag in ("--select", "--ignore", "--config", "--fail-on"):
        assert flag in result.stdout


def test_fail_on_unset_follows_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["check", "--units", "10", "--activation", "softmax", "--loss", "binary_crossentropy"]
    (tmp_path / "lossaudit.toml").write_text('fail_on = "warning"\n')
    monkeypatch.chdir(tmp_path)
    assert invoke(*args).exit_code == 1  # LA103 is a warning
    assert invoke(*args, "--fail-on", "error").exit_code == 0
    doc = json.loads(invoke(*args, "--json", "--ignore", "LA103").stdout)
    assert (doc["verdict"], doc["fail_on"], doc["config"]["ignore"]) == ("pass", "warning", ["LA103"])


def _write_bad_inputs(tmp_path: Path) -> None:
    np.save(tmp_path / "nan.npy", np.array([0.0, np.nan, 1.0, 2.0]))
    np.save(tmp_path / "strings.npy", np.array(["cat", "dog", "cat", "dog"]))
    pd.DataFrame({"label": ["cat", "dog", "cat", "dog"]}).to_csv(tmp_path / "strings.csv", index=False)
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "y4.npy", np.array([0, 1, 2, 1]))
    np.save(tmp_path / "p3.npy", np.full((3, 3), 1 / 3))
    np.save(tmp_path / "p4.npy", np.full((4, 3), 1 / 3))
    (tmp_path / "corrupt.npy").write_bytes(b"not a numpy file at all")


BAD_INPUTS = [
    pytest.param(
        ["compare", "--labels", "nan.npy", "--predictions", "p4.npy"],
        "lossaudit: error: labels contain NaN in 1 row(s)",
        id="nan-labels",
    ),
    pytest.param(
        ["compare", "--labels", "strings.npy", "--predictions", "p4.npy"],
        "lossaudit: error: labels are strings; encode them as class indices 0..K-1 first",
        id="string-labels-npy",
    ),
    pytest.param(
        ["check", "--units", "2", "--activation", "softmax", "--labels", "strings.csv"],
        "lossaudit: error: labels are strings; encode them as class indices 0..K-1 first",
        id="string-labels-csv",
    ),
    pytest.param(
        ["compare", "--labels", "empty.npy", "--predictions", "p4.npy"],
        "lossaudit: error: labels file is empty: empty.npy",
        id="empty-file",
    ),
    pytest.param(
        ["compare", "--labels", "y4.npy", "--predictions", "p3.npy"],
        "lossaudit: error: labels have 4 rows but predictions have 3",
        id="rows-mismatch",
    ),
    pytest.param(
        ["compare", "--labels", "y4.npy", "--predictions", "p4.npy", "--units", "5"],
        "lossaudit: error: predictions have 3 column(s) but the head has 5 unit(s)",
        id="width-vs-units",
    ),
    pytest.param(
        ["compare", "--labels", "missing.npy", "--predictions", "p4.npy"],
        "lossaudit: error: labels file not found: missing.npy",
        id="missing-file",
    ),
    pytest.param(
        ["check", "--units", "3", "--labels", "corrupt.npy"],
        "lossaudit: error: labels file corrupt.npy is not a .npy file (no NumPy header)",
        id="corrupt-file",
    ),
    pytest.param(
        ["check"],
        "lossaudit: error: give the head with --units (and --activation, --loss), --spec or --model",
        id="check-nothing-given",
    ),
    pytest.param(
        ["explain", "LA999"],
        "lossaudit: error: unknown rule 'LA999'; `lossaudit rules` lists them",
        id="unknown-rule",
    ),
]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad")
    _write_bad_inputs(path)
    return path


@pytest.fixture(scope="module")
def bad_runs(bad_dir: Path) -> dict[tuple[str, ...], tuple[int, str, str]]:
    """Every bad-input command, started at once as real processes: (exit code, stdout, stderr)."""
    commands = [tuple(str(a) for a in case.values[0]) for case in BAD_INPUTS]  # type: ignore[union-attr]
    procs = {args: start_script(*args, cwd=bad_dir) for args in commands}
    results = {}
    for args, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        results[args] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize(("args", "line"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(
    bad_runs: dict[tuple[str, ...], tuple[int, str, str]], args: list[str], line: str
) -> None:
    code, out, err = bad_runs[tuple(args)]
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(line)
    assert "Traceback" not in err


@pytest.mark.parametrize(("args", "line"), BAD_INPUTS)
def test_bad_input_in_process_matches(
    bad_dir: Path, args: list[str], line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same contract through CliRunner (fast, and catches a command that forgets the guard)."""
    monkeypatch.chdir(bad_dir)
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith(line)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--units", "2", "--spec", "x.yaml"], "--units/--activation/--loss/--from-logits/"),
        (["check", "--from-logits", "--spec", "x.yaml"], "cannot be combined with --spec or --model"),
        (["check", "--spec", "x.yaml", "--model", "m.keras"], "give either --spec or --model, not both"),
        (["check", "--units", "2", "--label-smoothing", "1.5"], "label_smoothing must be in [0, 1), got 1.5"),
        (
            ["compare", "--labels", "y4.npy", "--predictions", "p4.npy", "--reported", "acc"],
            "--reported takes NAME=VALUE",
        ),
    ],
)
def test_option_errors_are_bad_input(
    bad_dir: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(bad_dir)
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("check", "--units", "abc"),
            "lossaudit: error: Invalid value for '--units': Input should be a valid integer, unable to "
            "parse string as an integer (see 'lossaudit check --help')",
        ),
        (("nosuch",), "lossaudit: error: No such command 'nosuch'. (see 'lossaudit --help')"),
        (("explain",), "lossaudit: error: Missing argument 'code'. (see 'lossaudit explain --help')"),
        (("rules", "--nope"), "lossaudit: error: No such option: --nope (see 'lossaudit rules --help')"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path, args: tuple[str, ...], line: str) -> None:
    proc = start_script(*args, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert (out, err) == ("", line + "\n")
