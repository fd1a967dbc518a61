"""Configuration, the way ruff does it: ``[tool.lossaudit]`` / ``lossaudit.toml`` found from the
working folder upwards, pipeline keys over it, command-line flags over both; the effective
configuration in report.json, the text report and the MLflow run params; one-line exit 2 for
anything unknown.

The acceptance lines run the installed console script in a subprocess with its working folder set,
because discovery and "exactly one line on stderr" are about the real process. The commands that
run a model (``audit``, ``run``) are checked for the configuration they apply in this process,
with its working folder set the same way: TensorFlow is loaded here once, not in every child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lossaudit.cli import app
from lossaudit.core.config import RuleConfig
from lossaudit.core.config_file import (
    apply_layer,
    command_line_layer,
    discover_config,
    find_config_file,
    load_config_file,
    pipeline_keys,
    resolve_config,
    split_codes,
)
from lossaudit.core.findings import Severity
from lossaudit.errors import BadInputError
from lossaudit.pipeline.config import load_pipeline

ROOT = Path(__file__).resolve().parents[1]
SOFTMAX_BCE = ("check", "--units", "10", "--activation", "softmax", "--loss", "binary_crossentropy")
SIGMOID_CCE = ("check", "--units", "3", "--activation", "sigmoid", "--loss", "categorical_crossentropy")


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("lossaudit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lossaudit"]


def lossaudit(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def lossaudit_here(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    """The same command line in this process (typer's runner), in the working folder ``cwd``."""
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pyproject(folder: Path, table: str) -> Path:
    return write(folder / "pyproject.toml", f'[project]\nname = "x"\n\n[tool.lossaudit]\n{table}\n')


def codes_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return list(json.loads(proc.stdout)["codes"])


# --- discovery ---------------------------------------------------------------------------------


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config_file() is None
    config = discover_config()
    assert config == RuleConfig()
    assert config.to_dict()["source"] == "defaults"


def test_pyproject_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = pyproject(tmp_path, 'ignore = ["LA103"]')
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_config_file() == found.resolve()
    config = discover_config()
    assert config.ignore == ("LA103",)
    assert config.source == f"{found.resolve()} [tool.lossaudit]"


def test_nearest_folder_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "lossaudit.toml", 'ignore = ["LA103"]\n')
    inner = pyproject(tmp_path / "project", 'ignore = ["LA104"]')
    (tmp_path / "project" / "src").mkdir()
    assert find_config_file(tmp_path / "project" / "src") == inner.resolve()
    assert discover_config(tmp_path / "project" / "src").ignore == ("LA104",)
    # From the outer folder, only the outer file applies: discovery never looks down.
    monkeypatch.chdir(tmp_path)
    assert discover_config().ignore == ("LA103",)


def test_lossaudit_toml_wins_over_pyproject_in_the_same_folder(tmp_path: Path) -> None:
    pyproject(tmp_path, 'ignore = ["LA104"]')
    own = write(tmp_path / "lossaudit.toml", 'ignore = ["LA103"]\n')
    assert find_config_file(tmp_path) == own.resolve()
    assert discover_config(tmp_path).ignore == ("LA103",)


def test_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    outer = pyproject(tmp_path, 'select = ["LA1"]')
    write(tmp_path / "pkg" / "pyproject.toml", '[project]\nname = "lossaudit-user"\n[tool.ruff]\nx = 1\n')
    # Not even read when it never mentions lossaudit: a broken unrelated file does not fail us.
    write(tmp_path / "pkg" / "sub" / "pyproject.toml", "[project\n")
    assert find_config_file(tmp_path / "pkg" / "sub") == outer.resolve()
    assert discover_config(tmp_path / "pkg" / "sub").select == ("LA1",)


def test_explicit_file(tmp_path: Path) -> None:
    # Any name but pyproject.toml holds top-level keys, like ruff.toml.
    other = write(tmp_path / "ci-rules.toml", 'select = ["LA5"]\nfail_on = "warning"\n')
    config = load_config_file(other)
    assert (config.select, config.fail_on, config.source) == (("LA5",), Severity.WARNING, str(other))
    # --config wins over discovery.
    pyproject(tmp_path, 'ignore = ["LA103"]')
    assert resolve_config(config_path=other, start=tmp_path).select == ("LA5",)
    assert resolve_config(start=tmp_path).ignore == ("LA103",)
    bare = write(tmp_path / "bare" / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(BadInputError, match=r"has no \[tool.lossaudit\] table"):
        load_config_file(bare)


# --- layering: file < pipeline < command line ------------------------------------------------


def test_layers_follow_ruff() -> None:
    file = apply_layer(
        RuleConfig(), {"ignore": ["LA103"], "severity": {"LA104": "error"}, "alpha": 0.01}, source="f"
    )
    # An ignore-only layer adds to the ignores and keeps the rest.
    more = apply_layer(file, {"ignore": ["LA2"], "severity": {"la501": "info"}}, source="p")
    assert (more.select, more.ignore) == (("ALL",), ("LA103", "LA2"))
    assert dict(more.severity) == {"LA104": Severity.ERROR, "LA501": Severity.INFO}
    assert (more.alpha, more.source) == (0.01, "f + p")
    # A select starts over: the earlier ignores go (ruff: --select beats the file's ignore).
    fresh = apply_layer(more, {"select": ["LA1"]}, source="c")
    assert (fresh.select, fresh.ignore) == (("LA1",), ())
    assert fresh.enabled("LA103") and not fresh.enabled("LA201")
    # Ignoring a prefix takes away a more specific select of an earlier layer.
    narrow = apply_layer(RuleConfig(select=("LA103", "LA2")), {"ignore": ["LA1"]}, source="c")
    assert not narrow.enabled("LA103") and narrow.enabled("LA201")
    # Nothing given: unchanged, source too.
    assert apply_layer(file, {}, source="nothing") is file


def test_command_line_flags() -> None:
    assert split_codes(["LA1,LA2", " la5 ", ""]) == ("LA1", "LA2", "la5")
    assert split_codes(None) is None
    assert command_line_layer(["LA1,LA2"], None, "warning") == {
        "select": ("LA1", "LA2"),
        "fail_on": "warning",
    }
    with pytest.raises(BadInputError, match=r"^--ignore: unknown rule code\(s\) LA999$"):
        command_line_layer(None, ["LA103,LA999"])


def test_precedence_file_pipeline_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = pyproject(
        tmp_path, 'ignore = ["LA103"]\nseverity = {LA104 = "error", LA501 = "info"}\nalpha = 0.01'
    )
    pipeline = write(
        tmp_path / "pipelines" / "p.yaml",
        "kind: audit\nfail_on: warning\nseverity: {LA104: info}\nignore: LA2,LA3\n"
        "audits: [{model: m.keras, data: d.npz}]\n",
    )
    monkeypatch.chdir(tmp_path / "pipelines")
    # File, then pipeline.
    config = load_pipeline(pipeline)
    rules = config.rules
    assert rules.ignore == ("LA103", "LA2", "LA3")
    assert dict(rules.severity) == {"LA104": Severity.INFO, "LA501": Severity.INFO}
    assert (rules.fail_on, config.fail_on, rules.alpha) == (Severity.WARNING, "warning", 0.01)
    assert rules.source == f"{found.resolve()} [tool.lossaudit] + pipeline {pipeline}"
    # Then the command line.
    flags = command_line_layer(None, ["LA104"], "error")
    rules = load_pipeline(pipeline, overrides=flags).rules
    assert rules.ignore == ("LA103", "LA2", "LA3", "LA104")
    assert rules.fail_on is Severity.ERROR
    assert rules.source.endswith("+ command line (--ignore, --fail-on)")
    # An explicit base replaces discovery.
    assert load_pipeline(pipeline, base=RuleConfig()).rules.ignore == ("LA2", "LA3")


def test_pipeline_rule_keys_are_checked(tmp_path: Path) -> None:
    bad = write(tmp_path / "p.yaml", "kind: demo\nselect: [LA999]\n")
    with pytest.raises(BadInputError) as info:
        load_pipeline(bad, base=RuleConfig())
    assert str(info.value) == f"pipeline {bad}: select: unknown rule code(s) LA999"
    assert pipeline_keys({"alpha": "0.05", "kind": "demo", "select": "LA1, LA5"}) == {
        "alpha": 0.05,
        "select": ["LA1", "LA5"],
    }


def test_shipped_pipelines_carry_their_rules() -> None:
    ci = load_pipeline(ROOT / "pipelines" / "ci.yaml", base=RuleConfig())
    assert ci.rules.fail_on is Severity.ERROR
    assert ci.rules.source.startswith("pipeline ")


# --- where the configuration shows -----------------------------------------------------------


def test_report_and_text_and_params_carry_the_configuration(tmp_path: Path) -> None:
    from lossaudit.core.audit import check
    from lossaudit.core.head import HeadSpec
    from lossaudit.formats.text import render_report
    from lossaudit.sinks.mlflow import run_params

    head = HeadSpec.from_values(units=3, activation="sigmoid", loss="categorical_crossentropy")
    default = check(head)
    assert "config:" not in render_report(default)
    config = load_config_file(pyproject(tmp_path, 'severity = {LA104 = "error"}\nignore = ["LA5"]'))
    report = check(head, config=config)
    assert (report.verdict, report.codes) == ("fail", ("LA104",))
    doc = json.loads(report.to_json())
    assert doc["config"] == config.to_dict()
    assert f"config: {config.source}" in render_report(report).splitlines()
    params = run_params(doc)
    assert params["config.select"] == "ALL"
    assert params["config.ignore"] == "LA5"
    assert params["config.severity"] == "LA104=error"
    assert params["config.fail_on"] == "error"
    assert params["config.alpha"] == "0.001"
    assert params["config.tolerance"] == "auto"
    assert params["config.source"] == config.source


# --- the acceptance lines, as real processes -------------------------------------------------


def test_acceptance_ignore_silences_la103(tmp_path: Path) -> None:
    work = tmp_path / "project" / "src"
    work.mkdir(parents=True)
    plain = lossaudit(*SOFTMAX_BCE, "--json", cwd=work)
    assert (plain.returncode, codes_of(plain)) == (0, ["LA103"])
    found = pyproject(tmp_path / "project", 'ignore = ["LA103"]')
    silenced = lossaudit(*SOFTMAX_BCE, "--json", cwd=work)
    assert (silenced.returncode, codes_of(silenced)) == (0, [])
    assert json.loads(silenced.stdout)["config"]["ignore"] == ["LA103"]
    text = lossaudit(*SOFTMAX_BCE, cwd=work)
    assert f"config: {found.resolve()} [tool.lossaudit]" in text.stdout.splitlines()
    assert "no findings" in text.stdout
    # --select on the command line starts over, as in ruff: LA103 is back.
    back = lossaudit(*SOFTMAX_BCE, "--json", "--select", "LA1", cwd=work)
    assert codes_of(back) == ["LA103"]


def test_acceptance_severity_error_fails_sigmoid_cce(tmp_path: Path) -> None:
    """Independent of LA104's catalogue default: the configured severity decides."""

    def findings(proc: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
        return [(f["code"], f["severity"]) for f in json.loads(proc.stdout)["findings"]]

    pyproject(tmp_path, 'severity = {LA104 = "warning"}')
    warned = lossaudit(*SIGMOID_CCE, "--json", cwd=tmp_path)
    assert (warned.returncode, findings(warned)) == (0, [("LA104", "warning")]), warned.stderr
    pyproject(tmp_path, 'severity = {LA104 = "error"}')
    failing = lossaudit(*SIGMOID_CCE, "--json", cwd=tmp_path)
    assert failing.returncode == 1, failing.stderr
    assert json.loads(failing.stdout)["verdict"] == "fail"
    assert findings(failing) == [("LA104", "error")]
    text = lossaudit(*SIGMOID_CCE, cwd=tmp_path)
    assert text.returncode == 1
    assert "LA104 error " in text.stdout
    # The command line wins over the file.
    assert lossaudit(*SIGMOID_CCE, "--ignore", "LA104", cwd=tmp_path).returncode == 0
    # A lossaudit.toml wins over the pyproject.toml beside it; --fail-on over both.
    write(tmp_path / "lossaudit.toml", 'severity = {LA104 = "warning"}\nfail_on = "warning"\n')
    assert lossaudit(*SIGMOID_CCE, cwd=tmp_path).returncode == 1
    assert lossaudit(*SIGMOID_CCE, "--fail-on", "error", cwd=tmp_path).returncode == 0


BAD_CONFIGS = [
    pytest.param(
        'ignore = ["LA103"]\ncolour = "red"\n',
        (),
        "[tool.lossaudit]: unknown configuration key(s) colour (known: select, ignore,",
        id="unknown-key",
    ),
    pytest.param(
        'ignore = ["LA999"]\n', (), "[tool.lossaudit]: ignore: unknown rule code(s) LA999", id="code"
    ),
    pytest.param(
        'severity = {LA104 = "fatal"}\n',
        (),
        "[tool.lossaudit]: severity.LA104: 'fatal' is not one of error, warning, info",
        id="severity-value",
    ),
    pytest.param(
        'severity = {LA998 = "error"}\n',
        (),
        "[tool.lossaudit]: severity: unknown rule code LA998",
        id="sev-code",
    ),
    pytest.param('select = ["LA1"\n', (), "is not valid TOML: ", id="bad-toml"),
    pytest.param(
        "", ("--config", "missing.toml"), "config file not found: missing.toml", id="missing-config"
    ),
    pytest.param("", ("--select", "LA1,LA42"), "--select: unknown rule code(s) LA42", id="select-flag"),
]


@pytest.mark.parametrize(("table", "flags", "message"), BAD_CONFIGS)
def test_bad_configuration_exits_2_with_one_line(
    tmp_path: Path, table: str, flags: tuple[str, ...], message: str
) -> None:
    if table:
        pyproject(tmp_path, table)
    proc = lossaudit(*SOFTMAX_BCE, *flags, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lossaudit: error: ")
    assert message in lines[0]


def test_bad_pipeline_rules_exit_2_with_one_line(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", "kind: demo\nseverity: {LA104: loud}\n")
    proc = lossaudit("run", "p.yaml", "--no-log", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "lossaudit: error: pipeline p.yaml: severity.LA104: 'loud' is not one of error, warning, info"
    ]


# --- the commands that run a model ------------------------------------------------------------


@pytest.mark.keras
@pytest.mark.mlflow
def test_run_pipeline_layers_and_logs_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """file (LA506 an info) < pipeline (fail at info) < --fail-on warning: LA506 reported as info,
    the audit passes; report.json and the MLflow run params hold the merged configuration."""
    import mlflow

    pyproject(tmp_path, 'severity = {LA506 = "info"}\nignore = ["LA103"]')
    model = ROOT / "tests" / "data" / "pipelines" / "iris_softmax_sparse.keras"
    data = ROOT / "tests" / "data" / "pipelines" / "iris_eval.npz"
    write(
        tmp_path / "p.yaml",
        f"kind: audit\nfail_on: info\nout: reports\nthresholds: {{accuracy: 1.5}}\n"
        f"audits: [{{name: iris, model: {model}, data: {data}}}]\n",
    )
    proc = lossaudit_here(
        "run", "p.yaml", "--fail-on", "warning", "--json", cwd=tmp_path, monkeypatch=monkeypatch
    )
    assert proc.exit_code == 0, proc.output
    entry = json.loads(proc.stdout)["entries"][0]
    assert (entry["verdict"], entry["codes"]) == ("pass", ["LA506"])
    report = json.loads((tmp_path / "reports" / "iris" / "report.json").read_text())
    assert [(f["code"], f["severity"]) for f in report["findings"]] == [("LA506", "info")]
    config = report["config"]
    assert (config["fail_on"], config["ignore"], config["severity"]) == (
        "warning",
        ["LA103"],
        {"LA506": "info"},
    )
    assert config["source"] == (
        f"{(tmp_path / 'pyproject.toml').resolve()} [tool.lossaudit] + pipeline p.yaml"
        " + command line (--fail-on)"
    )
    params: dict[str, Any] = mlflow.MlflowClient().get_run(entry["run_id"]).data.params
    assert params["config.fail_on"] == "warning"
    assert params["config.severity"] == "LA506=info"
    assert params["config.source"] == config["source"]


@pytest.mark.keras
def test_audit_command_uses_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "lossaudit.toml", 'select = ["LA5"]\nfail_on = "info"\n')
    model = ROOT / "tests" / "data" / "pipelines" / "iris_softmax_sparse.keras"
    data = ROOT / "tests" / "data" / "pipelines" / "iris_eval.npz"
    proc = lossaudit_here(
        "audit", str(model), "--data", str(data), "--no-log", "--no-gx", "--out", "out",
        "--threshold", "accuracy=1.5", "--json", cwd=tmp_path, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert proc.exit_code == 1, proc.output
    doc = json.loads(proc.stdout)
    assert doc["codes"] == ["LA506"]
    assert doc["config"]["select"] == ["LA5"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["config"] == doc["config"]
    ignored = lossaudit_here(
        "audit", str(model), "--data", str(data), "--no-log", "--no-gx", "--out", "out2",
        "--threshold", "accuracy=1.5", "--ignore", "LA506", "--json",
        cwd=tmp_path, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert (ignored.exit_code, json.loads(ignored.stdout)["codes"]) == (0, [])


def test_registry_jobs_carry_the_rule_configuration_into_their_rules_version() -> None:
    from lossaudit.core.config import RuleConfig
    from lossaudit.registry.options import RegistryOptions
    from lossaudit.tracking import rules_version

    quiet = RuleConfig(ignore=("LA103",), source="pyproject.toml")
    options = RegistryOptions(name="m", rules=quiet.to_dict())
    assert options.rules["ignore"] == ["LA103"]
    # Another configuration is another rules version (the job re-audits); the source is not.
    assert rules_version(quiet.to_dict()) != rules_version()
    assert rules_version(quiet.to_dict()) == rules_version({**quiet.to_dict(), "source": "elsewhere"})
    with pytest.raises(BadInputError, match="disagrees"):
        RegistryOptions(name="m", fail_on="warning", rules=quiet.to_dict())
