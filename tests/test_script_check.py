"""``lossaudit check PATH...`` beyond the rules: notebooks, suppression, configuration, pins, the
GitHub and SARIF outputs, the command line, and that a checked file is never imported or run.

In-process (Typer's CliRunner) except the one test that needs a fresh interpreter to see what it
imported.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from lossaudit.cli import app
from lossaudit.core.config import RuleConfig
from lossaudit.core.findings import Severity
from lossaudit.core.head import KerasFamily
from lossaudit.formats.github import render_github
from lossaudit.formats.sarif import render_sarif
from lossaudit.formats.text import render_source_report
from lossaudit.script.check import check_paths
from lossaudit.script.family import PinFinder, decide, parse_requirement, read_pyproject
from lossaudit.script.source import read_source

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
runner = CliRunner()

BCE_SOFTMAX = """import keras
model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
model.compile(loss="binary_crossentropy", metrics=["accuracy"])
"""
ONE_UNIT_CCE = """from tensorflow import keras
model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam",
              loss="categorical_crossentropy")
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root with no configuration or pins above it, as the working folder."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def codes_at(report: Any) -> set[tuple[int, str]]:
    return {(f.location.line, f.code) for f in report.findings}


# --- notebooks ----------------------------------------------------------------------------------


def notebook(cells: list[list[str]]) -> str:
    doc = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# title\n", "text"]},
            *(
                {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c}
                for c in cells
            ),
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(doc, indent=1)


def test_notebook_finding_points_at_the_ipynb_line_and_names_the_cell(repo: Path) -> None:
    cells = [
        ["%pip install keras\n", "import keras\n", "!nvidia-smi"],
        ["model = keras.Sequential([\n", '    keras.layers.Dense(1, activation="softmax"),\n', "])\n"],
        ['model.compile(loss="binary_crossentropy")\n', "model.summary?"],
    ]
    path = write(repo, "train.ipynb", notebook(cells))
    report = check_paths([path])
    assert report.context["not_parsed"] == []
    [finding] = report.findings
    assert finding.code == "LA102"
    raw = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(raw, start=1) if "keras.layers.Dense(1" in text)
    location = finding.location
    assert location is not None
    assert (location.line, location.cell, location.cell_line) == (line, 2, 2)
    assert raw[line - 1][location.column - 1 :].startswith("keras.layers.Dense(1")
    assert "[cell 2, line 2]" in render_source_report(report)


def test_notebook_cell_that_does_not_parse_is_named_and_the_others_are_checked(repo: Path) -> None:
    cells = [["import keras\n"], ["def broken(:\n"], ["%%bash\n", "echo not python\n"]]
    cells.append(['m = keras.Sequential([keras.layers.Dense(1, activation="softmax")])\n'])
    report = check_paths([write(repo, "nb.ipynb", notebook(cells))])
    assert [f.code for f in report.findings] == ["LA102"]
    [notice] = report.context["not_parsed"]
    assert "cell 2" in notice["message"] and notice["path"].endswith("nb.ipynb")


def test_a_file_that_is_not_a_notebook_is_a_notice(repo: Path) -> None:
    report = check_paths([write(repo, "bad.ipynb", '{"cells": [ "keras" ')])
    [notice] = report.context["not_parsed"]
    assert "not a readable notebook" in notice["message"]


# --- suppression and configuration --------------------------------------------------------------


def test_inline_suppression_by_code_and_for_all(repo: Path) -> None:
    by_code = BCE_SOFTMAX.replace(
        'metrics=["accuracy"])', 'metrics=["accuracy"])  # lossaudit: ignore[LA103]'
    )
    report = check_paths([write(repo, "a.py", by_code)], config=RuleConfig())
    assert report.findings == () and report.context["suppressed"] == 1
    other = BCE_SOFTMAX.replace('metrics=["accuracy"])', 'metrics=["accuracy"])  # lossaudit: ignore[LA101]')
    assert [f.code for f in check_paths([write(repo, "b.py", other)]).findings] == ["LA103"]
    # On any line of a call that spans several, and without codes for every code.
    spanning = ONE_UNIT_CCE.replace(
        '"categorical_crossentropy")', '"categorical_crossentropy")  # lossaudit: ignore'
    )
    assert check_paths([write(repo, "c.py", spanning)]).findings == ()


def test_configuration_selects_ignores_and_sets_severity(repo: Path) -> None:
    path = write(repo, "a.py", BCE_SOFTMAX)
    assert check_paths([path], config=RuleConfig(ignore=("LA103",))).findings == ()
    raised = check_paths([path], config=RuleConfig(severity={"LA103": "error"}))
    assert [f.severity for f in raised.findings] == [Severity.ERROR] and raised.verdict == "fail"
    write(repo, "pyproject.toml", '[tool.lossaudit]\nignore = ["LA1"]\n')
    result = invoke("check", "a.py")
    assert result.exit_code == 0 and "0 error, 0 warning" in result.stdout


# --- the Keras family: imports, code, pins -------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("keras==2.2.4", ("keras", (("==", "2.2.4"),))),
        (
            "tensorflow-cpu>=2.15,<2.16 ; sys_platform == 'linux'",
            ("tensorflow-cpu", ((">=", "2.15"), ("<", "2.16"))),
        ),
        ("TF_Keras[extra] ~= 2.15.0  # pinned", ("tf-keras", (("~=", "2.15.0"),))),
        ("-r base.txt", None),
        ("# comment", None),
    ],
)
def test_requirement_lines(line: str, parsed: Any) -> None:
    assert parse_requirement(line) == parsed


@pytest.mark.parametrize(
    ("packages", "pins", "families"),
    [
        ({"keras"}, "keras==2.3.1", {"legacy"}),
        ({"keras"}, "keras>=2.4,<3", {"tf_keras"}),
        ({"keras"}, "keras>=3", {"keras3"}),
        ({"keras"}, "tensorflow==2.16.1", {"keras3"}),
        ({"tf.keras"}, "tensorflow==2.1.0", {"legacy"}),
        ({"tf.keras"}, "tensorflow>=2.4,<2.16", {"tf_keras"}),
        ({"tf.keras"}, "tensorflow~=2.18.0", {"keras3"}),
        ({"tf_keras"}, "", {"tf_keras"}),
        ({"tf.keras"}, "", {"keras3", "tf_keras", "legacy"}),
    ],
)
def test_family_from_package_and_pins(packages: set[str], pins: str, families: set[str], repo: Path) -> None:
    write(repo, "requirements.txt", pins + "\n")
    found = PinFinder().for_file(repo / "train.py")
    assert {f.value for f in decide(packages, found).candidates} == families


def test_pins_from_pyproject_dependencies_and_poetry(repo: Path) -> None:
    path = write(repo, "pyproject.toml", '[project]\ndependencies = ["keras==2.2.4"]\n')
    assert read_pyproject(path).keras == (("==", "2.2.4"),)
    write(repo, "pyproject.toml", '[tool.poetry.dependencies]\ntensorflow = "^2.10"\n')
    assert read_pyproject(path).tensorflow == ((">=", "2.10"), ("<", "3"))


def test_pins_are_found_above_the_script_and_decide_la401(repo: Path) -> None:
    script = write(repo, "src/models/train.py", BCE_SOFTMAX)
    assert {f.code for f in check_paths([script]).findings} == {"LA103"}  # family unknown
    write(repo, "pyproject.toml", '[project]\ndependencies = ["keras==2.2.4", "numpy"]\n')
    report = check_paths([script])
    assert {f.code for f in report.findings} == {"LA103", "LA401"}
    la401 = next(f for f in report.findings if f.code == "LA401")
    assert "keras==2.2.4" in la401.message and la401.evidence["keras_family"] == "legacy"


def test_legacy_signals_in_the_code_decide_the_family(repo: Path) -> None:
    graph = "import tensorflow as tf\ntf.compat.v1.disable_eager_execution()\n" + BCE_SOFTMAX.replace(
        "import keras\n", ""
    ).replace("keras.", "tf.keras.")
    report = check_paths([write(repo, "g.py", graph)])
    assert {f.code for f in report.findings} == {"LA103", "LA401"}
    assert "graph mode" in report.context["models"][0]["keras_family_from"]


def test_keras_family_flag_overrides(repo: Path) -> None:
    path = write(repo, "a.py", BCE_SOFTMAX)
    report = check_paths([path], keras_family=KerasFamily.LEGACY)
    assert {f.code for f in report.findings} == {"LA103", "LA401"}
    result = invoke("check", "a.py", "--keras-family", "legacy", "--json")
    assert json.loads(result.stdout)["codes"] == ["LA103", "LA401"]


# --- what is followed ----------------------------------------------------------------------------


def test_imports_under_other_names_and_helper_functions(repo: Path) -> None:
    text = """
import tensorflow.keras as tk
from tensorflow.keras import layers as L

NUM = 2 * 3 - 5


def head(model, units=NUM):
    model.add(L.Dense(units, activation="softmax"))
    return model


net = head(tk.models.Sequential([L.Dense(8, activation="relu")]))
net.compile(loss=tk.losses.BinaryCrossentropy())
"""
    report = check_paths([write(repo, "a.py", text)])
    assert codes_at(report) == {(9, "LA102")}
    assert report.findings[0].location.column == 15  # the Dense(...) call, 1-based


def test_a_file_without_keras_is_not_parsed(repo: Path) -> None:
    source = read_source(write(repo, "plain.py", "def f(:\n"))
    assert source.units == () and not source.mentions_keras and source.notices == ()


def test_a_folder_skips_hidden_and_virtualenv_folders(repo: Path) -> None:
    write(repo, ".venv/lib/train.py", BCE_SOFTMAX)
    write(repo, "node_modules/x/train.py", BCE_SOFTMAX)
    write(repo, "build/train.py", BCE_SOFTMAX)
    write(repo, "src/train.py", BCE_SOFTMAX)
    report = check_paths([repo])
    assert report.context["files"] == 1
    assert [f.location.path for f in report.findings] == [str(repo / "src" / "train.py")]


def test_a_large_generated_file_is_fast_and_bounded(repo: Path) -> None:
    body = "".join(f"def f{i}(x):\n    return f{i - 1}(x) if {i} else x\n" for i in range(1, 400))
    text = "import keras\n" + body + BCE_SOFTMAX
    report = check_paths([write(repo, "big.py", text)])
    assert {f.code for f in report.findings} == {"LA103"}


# --- outputs --------------------------------------------------------------------------------------


def sarif_errors(log: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [e.message for e in validator.iter_errors(log)]


def test_sarif_has_source_regions_fixes_and_notifications(repo: Path) -> None:
    write(repo, "src/a.py", ONE_UNIT_CCE)
    write(repo, "src/broken.py", "import keras\nx = (\n")
    result = invoke("check", "src", "--format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert sarif_errors(log) == []
    run = log["runs"][0]
    [sarif_result] = run["results"]
    location = sarif_result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/a.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 3, "startColumn": 1, "endLine": 4, "endColumn": 47}
    [fix] = sarif_result["fixes"]
    [change] = fix["artifactChanges"]
    replacement = change["replacements"][0]
    assert replacement["deletedRegion"] == {"startLine": 4, "endLine": 4}
    assert replacement["insertedContent"]["text"] == '              loss="binary_crossentropy")'
    assert "fix:" in sarif_result["message"]["text"]
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/broken.py"


def test_github_annotations(repo: Path) -> None:
    write(repo, "a.py", ONE_UNIT_CCE)
    write(repo, "b.py", "import keras\nmodel = (\n")
    result = invoke("check", "a.py", "b.py", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("::error file=a.py,line=3,col=1,endLine=4,endColumn=47,title=LA101 ")
    assert "%0A%0Afix:%0A" in lines[0] and 'loss="binary_crossentropy")' in lines[0]
    assert lines[1].startswith("::warning file=b.py,line=")
    assert lines[-1].startswith("lossaudit: verdict fail")


def test_github_escapes_properties_and_messages() -> None:
    from lossaudit.formats.github import escape_data, escape_property

    assert escape_property("a,b:c%\nd") == "a%2Cb%3Ac%25\\nd"
    assert escape_data("50%\nnext::error x") == "50%25%0Anext::error x"
    assert escape_data("\x1b[31m") == "\\x1b[31m"


def test_hostile_file_names_stay_inert_in_every_format(repo: Path) -> None:
    name = "evil\n::error file=x::pwned\x1b[31m,a:b.py"
    path = write(repo, name, BCE_SOFTMAX)
    report = check_paths([path])
    assert len(report.findings) == 1
    github = render_github(report).splitlines()
    assert all(line.startswith(("::warning ", "lossaudit: verdict")) for line in github)
    assert len(github) == 2
    assert "\x1b" not in render_source_report(report)
    assert render_source_report(report).splitlines()[-1].startswith("verdict: ")
    assert sarif_errors(json.loads(json.dumps(render_sarif(report, repo_root=repo)))) == []


def test_control_characters_in_the_flagged_line_stay_inert(repo: Path) -> None:
    """The suggestion repeats the flagged line, comment and all: an escape sequence or a bidi
    control in it is shown as its escape, never passed to the terminal or the runner."""
    hostile = BCE_SOFTMAX.replace('["accuracy"])', '["accuracy"])  # \x1b[2J\u202e\x07::error::x%0A')
    report = check_paths([write(repo, "a.py", hostile)])
    [finding] = report.findings
    assert "\x1b" in finding.suggestions[0].replacement  # the line as written, in the data
    text = render_source_report(report)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\x1b[2J\\u202e\\x07::error::x%0A" in text
    github = render_github(report)
    assert "\x1b" not in github and "\x07" not in github
    assert len(github.splitlines()) == 2 and "%250A" in github
    assert sarif_errors(json.loads(json.dumps(render_sarif(report, repo_root=repo)))) == []


def test_text_output_shows_the_fix_as_the_rewritten_line(repo: Path) -> None:
    write(repo, "a.py", BCE_SOFTMAX)
    result = invoke("check", "a.py")
    assert result.exit_code == 0  # LA103 is a warning
    assert result.stdout.startswith("a.py:3:1: LA103 warning ")
    assert '        3 | model.compile(loss="categorical_crossentropy", metrics=["accuracy"])' in result.stdout
    assert "checked 1 file(s): 1 model(s) judged" in result.stdout


def test_json_findings_carry_location_and_suggestions(repo: Path) -> None:
    write(repo, "a.py", ONE_UNIT_CCE)
    doc = json.loads(invoke("check", "a.py", "--json").stdout)
    [finding] = doc["findings"]
    assert finding["location"] == {"path": "a.py", "line": 3, "column": 1, "end_line": 4, "end_column": 47}
    assert finding["suggestions"][0]["first_line"] == 4
    assert doc["context"]["models"][0]["loss"] == "categorical_crossentropy"


# --- the command line -------------------------------------------------------------------------------


def test_unparsable_file_is_exit_2_unless_something_failed(repo: Path) -> None:
    write(repo, "ok.py", BCE_SOFTMAX)
    write(repo, "broken.py", "import keras\ndef f(:\n")
    result = invoke("check", ".")
    assert result.exit_code == 2
    assert "broken.py:2:7: not parsed: invalid syntax" in result.stdout
    assert "LA103" in result.stdout  # the rest was checked
    write(repo, "bad.py", ONE_UNIT_CCE)
    assert invoke("check", ".").exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "missing.py"], "no such file or folder: missing.py"),
        (["check", "m.keras"], "saved model or a data file"),
        (["check", "a.py", "--units", "3"], "cannot be combined with --model"),
        (["check", "a.py", "--json", "--format", "sarif"], "--json cannot be combined with --format"),
    ],
)
def test_bad_combinations_are_one_line_and_exit_2(args: list[str], message: str, repo: Path) -> None:
    write(repo, "a.py", BCE_SOFTMAX)
    (repo / "m.keras").write_bytes(b"PK")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_head_flags_take_the_new_formats_too() -> None:
    args = ["check", "--units", "1", "--activation", "softmax", "--loss", "binary_crossentropy"]
    github = invoke(*args, "--format", "github")
    assert github.exit_code == 1 and github.stdout.startswith("::error title=LA102 softmax-on-one-unit::")
    log = json.loads(invoke(*args, "--format", "sarif").stdout)
    assert sarif_errors(log) == []


SIDE_EFFECTS = """
import pathlib
pathlib.Path({marker!r}).write_text("I ran")
import tensorflow as tf
import keras
model = keras.Sequential([keras.layers.Dense(1, activation="softmax")])
model.compile(loss="binary_crossentropy")
"""
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


def test_checked_files_are_never_imported_or_run(repo: Path) -> None:
    marker = repo / "ran.txt"
    script = write(repo, "train.py", SIDE_EFFECTS.format(marker=str(marker)))
    nb = write(
        repo, "nb.ipynb", notebook([SIDE_EFFECTS.format(marker=str(marker)).splitlines(keepends=True)])
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "check", str(script), str(nb)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
        env=env,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    output, _, probe = proc.stdout.rpartition("\n@@")
    doc = json.loads(probe)
    assert doc["code"] == 1 and output.count("LA102") == 2
    assert not marker.exists(), "the checked file ran"
    heavy = {"tensorflow", "keras", "tf_keras", "numpy", "mlflow", "sklearn"} & set(doc["modules"])
    assert heavy == set()


# --- pre-commit ---------------------------------------------------------------------------------

CORRECT_SCRIPT = """import keras
num_classes = 10
model = keras.Sequential([keras.layers.Dense(num_classes, activation="softmax")])
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
"""


def test_pre_commit_hook_definitions() -> None:
    """Two hooks, one check: pre-commit installs lossaudit for one, the other uses the installed
    lossaudit; the heavy install is said in the description a user reads."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"lossaudit", "lossaudit-system"}
    assert by_id["lossaudit"]["language"] == "python"
    assert by_id["lossaudit-system"]["language"] == "system"
    for hook in hooks:
        assert hook["entry"] == "lossaudit check"
        assert hook["types_or"] == ["python", "jupyter"]
    assert "TensorFlow" in by_id["lossaudit"]["description"]
    assert "installs nothing" in by_id["lossaudit-system"]["description"]


def _pre_commit() -> str | None:
    beside = Path(sys.executable).with_name("pre-commit")
    if beside.exists():
        return str(beside)
    import shutil

    return shutil.which("pre-commit")


def _try_repo(hook: str, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``pre-commit try-repo ROOT HOOK --all-files`` in a new repository with one faulty and one
    correct training script, with this interpreter's scripts (lossaudit) on the PATH."""
    sample = tmp_path / "sample"
    sample.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=sample, check=True)
    write(sample, "train.py", ONE_UNIT_CCE)
    write(sample, "train_ok.py", CORRECT_SCRIPT)
    subprocess.run(["git", "add", "train.py", "train_ok.py"], cwd=sample, check=True)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        [_pre_commit() or "pre-commit", "try-repo", str(ROOT), hook, "--all-files"],
        cwd=sample,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PATH": path},
    )


@pytest.mark.skipif(_pre_commit() is None, reason="pre-commit is not installed")
def test_pre_commit_try_repo_runs_the_installed_lossaudit(tmp_path: Path) -> None:
    """The lossaudit-system hook: seconds, nothing installed."""
    proc = _try_repo("lossaudit-system", tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"train\.py:3:1: LA101", proc.stdout), proc.stdout
    assert "train_ok.py" not in proc.stdout and "checked 2 file(s): 2 model(s) judged" in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(_pre_commit() is None, reason="pre-commit is not installed")
@pytest.mark.skipif(
    os.environ.get("LOSSAUDIT_INSTALL_TESTS") != "1",
    reason="pip-installs lossaudit with TensorFlow into a fresh environment (minutes, 2.3 GB of "
    "downloads): LOSSAUDIT_INSTALL_TESTS=1 runs it",
)
def test_pre_commit_try_repo_runs_the_hook(tmp_path: Path) -> None:
    """The lossaudit hook: try-repo installs lossaudit and its dependencies into a fresh
    environment on every run (minutes, about 2.3 GB)."""
    proc = _try_repo("lossaudit", tmp_path, timeout=1800)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"train\.py:3:1: LA101", proc.stdout), proc.stdout
    assert "train_ok.py" not in proc.stdout and "checked 2 file(s): 2 model(s) judged" in proc.stdout


# --- the GitHub Actions example ------------------------------------------------------------------


def test_github_actions_example_checks_pull_requests(repo: Path) -> None:
    """examples/ci-scripts.yml runs on pull requests; its lossaudit commands, run here on a faulty
    script, give valid SARIF with the source region and an annotation on the line, and fail."""
    import shlex

    workflow = yaml.safe_load((ROOT / "examples" / "ci-scripts.yml").read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert workflow["permissions"]["security-events"] == "write"
    [job] = workflow["jobs"].values()
    commands = [step["run"] for step in job["steps"] if "lossaudit check" in step.get("run", "")]
    assert len(commands) == 2
    assert any(step.get("uses", "").startswith("github/codeql-action/upload-sarif") for step in job["steps"])
    write(repo, "train.py", ONE_UNIT_CCE)
    outputs = {}
    for command in commands:
        words = shlex.split(command.split(">")[0].split("||")[0])
        assert words[:2] == ["lossaudit", "check"]
        result = invoke(*words[1:])
        outputs[words[words.index("--format") + 1]] = result
    assert set(outputs) == {"sarif", "github"}
    log = json.loads(outputs["sarif"].stdout)
    assert sarif_errors(log) == []
    [found] = log["runs"][0]["results"]
    assert found["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    github = outputs["github"]
    assert github.exit_code == 1
    assert github.stdout.startswith("::error file=train.py,line=3,col=1,")
