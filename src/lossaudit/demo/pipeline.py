"""``kind: demo`` pipelines: every scenario as a report folder and an MLflow run.

The runner (:func:`lossaudit.pipeline.runner.run_pipeline`) gets :func:`run_demo` from the CLI;
each scenario's first audited case is the folder's report, every case goes under ``cases/``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lossaudit.errors import EXIT_FINDINGS, EXIT_PASS, LossauditError
from lossaudit.pipeline.runner import EntryOutcome, PipelineOutcome, RunContext, named_sink, set_tags

if TYPE_CHECKING:
    from lossaudit.demo.harness import Case, ScenarioResult
    from lossaudit.pipeline.config import PipelineConfig
    from lossaudit.sinks.mlflow import MlflowSink


def run_demo(config: PipelineConfig, context: RunContext) -> PipelineOutcome:
    """The scenarios of a ``kind: demo`` file (all of them unless it names some)."""
    from lossaudit.demo.harness import DemoSettings
    from lossaudit.demo.scenarios import SCENARIO_NAMES, run_scenarios
    from lossaudit.safe_names import child_folder

    names = list(config.scenarios) or list(SCENARIO_NAMES)
    results = run_scenarios(names, DemoSettings(), progress=context.progress)
    out_root = Path(config.resolve(config.out))
    entries = [
        _log_scenario(result, child_folder(out_root, result.name, what="scenario"), context.sink)
        for result in results
    ]
    return PipelineOutcome(config.name, config.kind, tuple(entries))


def write_scenario_folder(result: ScenarioResult, folder: Path) -> Path:
    """The scenario's first audited case as the folder's report, every case under ``cases/``,
    and the scenario itself as ``scenario.json``."""
    from lossaudit.sinks.local import write_atomic, write_report_folder

    cases = [c for c in result.cases if c.report is not None]
    if not cases:
        raise LossauditError(f"scenario {result.name} produced no audit report")
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        assert case.report is not None
        write_report_folder(case.report, folder / "cases" / case.label)
    document = json.dumps(result.to_dict(), indent=2, default=str) + "\n"
    write_atomic(folder / "scenario.json", document.encode("utf-8"))
    main = cases[0]
    assert main.report is not None
    with tempfile.TemporaryDirectory(prefix="lossaudit-gx-") as docs:
        attachments, attached_dirs = _gx_attachments(main, Path(docs))
        # report.json last: the folder is complete once it has one.
        write_report_folder(main.report, folder, attachments=attachments, attached_dirs=attached_dirs)
    return folder


def _gx_attachments(case: Case, docs: Path) -> tuple[dict[str, bytes], dict[str, Path]]:
    """The Great Expectations result and Data Docs of a scenario case's eval labels."""
    from lossaudit.sinks.local import GX_DOCS_DIR, GX_RESULT_JSON
    from lossaudit.validation.gx import validate_with_gx

    if case.y_eval is None:
        return {}, {}
    gx = validate_with_gx(case.y_eval, case.head, docs_dir=docs)
    attachments = {GX_RESULT_JSON: (json.dumps(gx.result_json, indent=2) + "\n").encode("utf-8")}
    attached_dirs = {GX_DOCS_DIR: gx.data_docs_dir} if gx.data_docs_dir is not None else {}
    return attachments, attached_dirs


def _log_scenario(result: ScenarioResult, folder: Path, sink: MlflowSink | None) -> EntryOutcome:
    write_scenario_folder(result, folder)
    findings = tuple(result.findings())
    run_id: str | None = None
    error: str | None = None
    # The demo shows failures on purpose: it passes when every scenario reproduced them.
    verdict = "pass" if result.reproduced else "fail"
    code = EXIT_PASS if result.reproduced else EXIT_FINDINGS
    if sink is not None:
        named = named_sink(sink, f"demo {result.name}")
        assert named is not None
        try:
            logged = named.log_folder(folder)
            run_id = logged.run_id
            set_tags(
                named,
                run_id,
                {
                    "lossaudit.scenario": result.name,
                    "lossaudit.reproduced": str(result.reproduced).lower(),
                    "lossaudit.scenario_codes": ",".join(result.codes),
                },
            )
        except LossauditError as exc:
            error, code = str(exc), exc.exit_code
    return EntryOutcome(
        result.name,
        verdict,
        result.codes,
        folder=str(folder),
        run_id=run_id,
        error=error,
        exit_code=code,
        findings=findings,
        extra={
            "reproduced": result.reproduced,
            "model_verdict": result.model_verdict,
            "seconds": round(result.seconds, 2),
        },
    )
