"""Every output path stays inside its folder (issue 9, item 3).

A pipeline audit's name becomes a safe folder name under ``out`` (:mod:`lossaudit.safe_names`):
``../../x``, absolute paths, separators, NUL and very long names are slugged, never followed;
names with no letter or digit (``..``, ``.``) and names that would share a folder are refused
with exit 2 before any audit runs. The end-to-end run lists the whole temporary tree: nothing is
written outside ``out``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lossaudit.errors import BadInputError
from lossaudit.safe_names import MAX_NAME, child_folder, clashes, folder_name

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests" / "data" / "pipelines" / "iris_softmax_sparse.keras"
DATA = ROOT / "tests" / "data" / "pipelines" / "iris_eval.npz"
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
ENV.pop("LOSSAUDIT_DEBUG", None)


def _pipeline(folder: Path, names: list[str], out: str = "out") -> Path:
    """A pipeline file in ``folder/pipelines`` auditing the iris model once per name."""
    (folder / "pipelines").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MODEL, folder / "m.keras")
    shutil.copyfile(DATA, folder / "d.npz")
    document = {
        "kind": "audit",
        "out": out,
        "audits": [{"name": name, "model": "m.keras", "data": "d.npz"} for name in names],
    }
    path = folder / "pipelines" / "p.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=False), encoding="utf-8")
    return path


def _folders(pipeline: Path) -> list[Path]:
    from lossaudit.pipeline.config import load_pipeline
    from lossaudit.pipeline.runner import audit_folders

    return audit_folders(load_pipeline(pipeline))


def _hostile_names(tmp_path: Path) -> dict[str, str]:
    """name -> the folder it must get under out."""
    long = "a" * 300
    return {
        "../../x": "x",
        str(tmp_path / "abs" / "x"): folder_name(str(tmp_path / "abs" / "x")),
        "a/b": "a-b",
        "..\\..\\w": "w",
        "x\0y": "x-y",
        "tab\there": "tab-here",
        "CON": "CON-",
        long: folder_name(long),
        "naïve résumé": "na-ve-r-sum",
        ".hidden": "hidden",
    }


# --- the folder names --------------------------------------------------------------------------


def test_hostile_audit_names_become_folders_inside_out(tmp_path: Path) -> None:
    names = _hostile_names(tmp_path)
    folders = _folders(_pipeline(tmp_path, list(names)))
    out = tmp_path / "out"
    assert [f.name for f in folders] == list(names.values())
    for folder in folders:
        assert folder.parent == out
        assert folder.resolve().parent == out.resolve()
        assert len(folder.name) <= MAX_NAME


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([".."], "audit name '..' has no letter or digit to name a folder with"),
        (["."], "audit name '.' has no letter or digit to name a folder with"),
        (["///"], "audit name '///' has no letter or digit to name a folder with"),
        (["\0"], "audit name '\\x00' has no letter or digit to name a folder with"),
        (["a/b", "a-b"], "audits 'a/b' and 'a-b' would write one report folder 'a-b'"),
        (["Digits", "digits"], "audits 'Digits' and 'digits' would write one report folder 'digits'"),
        (["../m", "m"], "audits '../m' and 'm' would write one report folder 'm'"),
    ],
    ids=["dotdot", "dot", "slashes", "nul", "slug-clash", "case-clash", "escape-clash"],
)
def test_names_with_no_folder_or_one_shared_folder_are_refused(
    tmp_path: Path, names: list[str], message: str
) -> None:
    with pytest.raises(BadInputError) as refused:
        _folders(_pipeline(tmp_path, names))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_an_empty_name_is_the_model_stem(tmp_path: Path) -> None:
    assert [f.name for f in _folders(_pipeline(tmp_path, [""]))] == ["m"]


def test_long_names_stay_distinct(tmp_path: Path) -> None:
    first, second = "b" * 300, "b" * 299 + "c"
    folders = _folders(_pipeline(tmp_path, [first, second]))
    assert folders[0] != folders[1]
    assert all(len(f.name) <= MAX_NAME for f in folders)


@given(st.text(max_size=400))
def test_any_name_gives_a_folder_inside_its_parent_or_one_line_refusal(name: str) -> None:
    parent = Path("/r/out")
    try:
        child = child_folder(parent, name)
    except BadInputError as exc:
        assert "\n" not in str(exc)
        return
    assert child.parent == parent
    assert child.name not in ("", ".", "..")
    assert not child.name.startswith(".")
    assert "/" not in child.name and "\\" not in child.name and "\0" not in child.name
    assert len(child.name) <= MAX_NAME
    assert child.name.isascii()


def test_clashes_compare_without_case() -> None:
    assert clashes(["a b", "a-b", "A_b", "a_B"]) == [("a b", "a-b", "a-b"), ("A_b", "a_B", "a_B")]


def test_the_project_run_artifact_path_is_the_safe_folder_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``mlflow run`` each entry's folder is logged under its folder's (safe) name, never
    under the entry's name as written (an artifact path of ``../../x``)."""
    from lossaudit.pipeline import project_run as project
    from lossaudit.pipeline import runner

    recorded: dict[str, Any] = {}

    def record_result(verdict: str, codes: Any, **kwargs: Any) -> None:
        recorded.update(kwargs)

    monkeypatch.setattr(project, "record_result", record_result)
    folder = tmp_path / "out" / "x"
    outcome = runner.PipelineOutcome(
        "p", "audit", (runner.EntryOutcome("../../x", "pass", folder=str(folder)),)
    )
    runner.record_project_outcome(outcome)
    assert recorded["folders"] == [("x", str(folder))]


@pytest.mark.parametrize("model", ["...keras", "models/...keras", "x/..", "models:/../x/1", "runs:/../../m"])
def test_the_default_out_folder_of_audit_stays_in_lossaudit_reports(model: str) -> None:
    from lossaudit.cli.audit import DEFAULT_REPORTS_DIR
    from lossaudit.cli.log import report_name

    folder = Path(DEFAULT_REPORTS_DIR) / report_name(model)
    assert folder.parent == Path(DEFAULT_REPORTS_DIR) and folder.name not in ("", ".", "..")


# --- end to end --------------------------------------------------------------------------------


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.keras
def test_a_pipeline_of_hostile_names_writes_nothing_outside_out(tmp_path: Path) -> None:
    """One ``lossaudit run`` of the iris model under four hostile names: four report folders,
    all directly under ``out``; every new file in the temporary tree is inside ``out``."""
    work = tmp_path / "work" / "deep"
    absolute = str(tmp_path / "abs" / "x")
    names = ["../../x", absolute, "a/b", "x\0y"]
    pipeline = _pipeline(work, names)
    before = _tree(tmp_path)
    script = Path(sys.executable).parent / "lossaudit"
    done = subprocess.run(
        [str(script), "run", str(pipeline), "--no-log", "--json"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=work,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = work / "out"
    new = _tree(tmp_path) - before
    outside = sorted(str(p) for p in new if out not in p.parents and p != out)
    assert outside == []
    assert sorted(p.name for p in out.iterdir()) == sorted(["x", folder_name(absolute), "a-b", "x-y"])
    document = json.loads(done.stdout)
    folders = [Path(entry["folder"]) for entry in document["entries"]]
    assert [entry["name"] for entry in document["entries"]] == names  # the names as written
    assert all(folder.parent == out and (folder / "report.json").is_file() for folder in folders)
    assert not (tmp_path / "abs").exists() and not (tmp_path / "work" / "x").exists()


def test_registry_version_folders_are_safe_and_distinct() -> None:
    from lossaudit.registry.audit import _version_folder

    names = ["my model", "my-model", "Digits", "digits", "../x", "a" * 300]
    folders = [_version_folder(n, "3") for n in names]
    assert len(set(folders)) == len(folders)
    assert all("/" not in f and ".." not in f and len(f) <= 100 for f in folders)
    assert _version_folder("digits", "3") == "digits-v3"
