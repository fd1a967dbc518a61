"""``lossaudit run PIPELINE.yaml``: execute a pipeline file (see :mod:`lossaudit.pipeline.config`).

* ``kind: audit`` -- each entry through :func:`lossaudit.pipeline.stages.run_audit`, logged to
  MLflow as one run (nested under a parent run when there are several);
* ``kind: demo`` -- the seed scenarios, one report folder and one MLflow run per scenario;
* ``kind: registry`` -- :func:`lossaudit.registry.audit.run_registry_audit`.

Under ``mlflow run`` (``MLFLOW_RUN_ID`` is set) the project's own run is the parent: every audit
becomes its nested child, in its experiment (when the pipeline logs to the project run's store),
and :func:`record_project_outcome` gives the project run the pipeline's verdict, codes, exit code
and report folders (:mod:`lossaudit.pipeline.project_run`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_PASS,
    EXIT_TRACKING_UNAVAILABLE,
    LossauditError,
    TrackingUnavailableError,
)
from lossaudit.pipeline.config import AuditEntry, PipelineConfig

if TYPE_CHECKING:
    from lossaudit.sinks.mlflow import MlflowSink

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunContext:
    """What a pipeline kind's runner gets besides the pipeline file."""

    sink: MlflowSink | None
    """The pipeline's MLflow sink (None with ``--no-log``; always None for ``kind: registry``,
    which opens its own)."""
    tracking_uri: str | None
    no_log: bool
    progress: Progress | None


KindRunner = Callable[[PipelineConfig, RunContext], "PipelineOutcome"]
"""Runs one ``kind`` of pipeline file: the demo's scenarios, or a registry job."""


@dataclass(frozen=True)
class EntryOutcome:
    """One audit (or demo scenario) of a pipeline: its verdict, codes, folder and MLflow run."""

    name: str
    verdict: str
    """``pass``, ``fail`` or ``error`` (bad input: the audit could not run)."""
    codes: tuple[str, ...] = ()
    folder: str | None = None
    run_id: str | None = None
    error: str | None = None
    exit_code: int = EXIT_PASS
    findings: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "codes": list(self.codes),
            "folder": self.folder,
            "run_id": self.run_id,
            "error": self.error,
            **dict(self.extra),
        }


@dataclass(frozen=True)
class PipelineOutcome:
    pipeline: str
    kind: str
    entries: tuple[EntryOutcome, ...]
    tracking_error: str | None = None
    document: Mapping[str, Any] | None = None
    """For ``kind: registry``: the registry job's own JSON document."""
    exit_code_override: int | None = None
    table: str | None = None
    """For ``kind: registry``: the job's summary table."""

    @property
    def exit_code(self) -> int:
        """2 when an audit could not run, else 3 when MLflow was unreachable, else 1 on any failing
        verdict, else 0."""
        if self.exit_code_override is not None:
            return self.exit_code_override
        codes = [e.exit_code for e in self.entries]
        if EXIT_BAD_INPUT in codes:
            return EXIT_BAD_INPUT
        if self.tracking_error is not None or EXIT_TRACKING_UNAVAILABLE in codes:
            return EXIT_TRACKING_UNAVAILABLE
        return EXIT_FINDINGS if EXIT_FINDINGS in codes else EXIT_PASS

    @property
    def verdict(self) -> str:
        if self.document is not None and "verdict" in self.document:
            return str(self.document["verdict"])
        verdicts = {e.verdict for e in self.entries}
        if "error" in verdicts:
            return "error"
        return "fail" if "fail" in verdicts else "pass"

    def to_dict(self) -> dict[str, Any]:
        if self.document is not None:
            return dict(self.document)
        return {
            "pipeline": self.pipeline,
            "kind": self.kind,
            "verdict": self.verdict,
            "findings": [f for e in self.entries for f in e.findings],
            "entries": [e.to_dict() for e in self.entries],
            "tracking_error": self.tracking_error,
        }


def _sink(config: PipelineConfig, tracking_uri: str | None, no_log: bool) -> MlflowSink | None:
    if no_log or not config.log.enabled:
        return None
    from lossaudit.sinks.mlflow import MlflowSink, project_run_id

    uri = tracking_uri or config.log.tracking_uri
    return MlflowSink(
        tracking_uri=uri,
        experiment=config.log.experiment,
        # Nested under the project run only in the project run's own store.
        parent_run_id=project_run_id(uri),
    )


def _parent(
    sink: MlflowSink | None, name: str, several: bool, explain: Callable[[], str]
) -> AbstractContextManager[Any]:
    """A parent run for several audits, unless ``mlflow run`` already gave one."""
    if sink is None or not several or sink.parent_run_id is not None:
        return nullcontext()
    return sink.parent(name, explain)


def verdict_explanation(kind: str, entries: Sequence[EntryOutcome]) -> str:
    """Why a pipeline's verdict is what it is, in a sentence or two (the parent run's note and the
    project run's): a demo passes while its models fail, on purpose; an audit pipeline fails
    when one audit fails."""
    errors = [e for e in entries if e.verdict == "error"]
    if errors:
        listed = "; ".join(f"{e.name}: {e.error}" for e in errors)
        return f"The pipeline could not run {len(errors)} of {len(entries)} entries: {listed}"
    if kind == "demo":
        missed = [e.name for e in entries if not e.extra.get("reproduced")]
        failing = sum(1 for e in entries if e.extra.get("model_verdict") == "fail")
        if missed:
            return (
                f"The demo fails: {', '.join(missed)} did not reproduce the fault it shows "
                "(see its scenario.json for the checks that failed)."
            )
        return (
            f"The demo passes: all {len(entries)} scenario(s) reproduced their fault, and "
            f"{failing} of the {len(entries)} audited models failed their audit, on purpose: each "
            "scenario audits a model built with a seed's fault, and passes when the audit finds "
            "the fault it is meant to show."
        )
    failed = [e for e in entries if e.verdict == "fail"]
    if failed:
        listed = "; ".join(f"{e.name} ({', '.join(e.codes) or 'no codes'})" for e in failed)
        return f"The pipeline fails: {len(failed)} of {len(entries)} audit(s) failed: {listed}."
    return f"The pipeline passes: all {len(entries)} audit(s) passed."


def run_pipeline(
    config: PipelineConfig,
    *,
    tracking_uri: str | None = None,
    no_log: bool = False,
    progress: Progress | None = None,
    kinds: Mapping[str, KindRunner] | None = None,
) -> PipelineOutcome:
    """Run every audit, scenario or registry version the file describes.

    ``kind: audit`` runs here. The other kinds live in the packages above the pipeline and are
    passed in by the caller (the CLI wires them: :data:`lossaudit.cli.pipeline.KINDS`):
    ``kinds["demo"]`` runs the scenarios (:func:`lossaudit.demo.pipeline.run_demo`) and
    ``kinds["registry"]`` is a whole job (:func:`lossaudit.registry.pipeline.run_registry`).
    """
    runners = dict(kinds or {})
    if config.kind != "audit" and config.kind not in runners:
        from lossaudit.errors import BadInputError

        raise BadInputError(f"pipeline {config.path}: kind {config.kind!r} is not available here")
    if config.kind == "registry":
        return runners["registry"](config, RunContext(None, tracking_uri, no_log, progress))
    folders = audit_folders(config)  # before anything runs: a bad name is exit 2, nothing written
    sink = _sink(config, tracking_uri, no_log)
    tracking_error: str | None = None
    entries: list[EntryOutcome] = []
    try:
        several = config.kind == "demo" or len(config.audits) > 1
        explain = partial(verdict_explanation, config.kind, entries)
        with _parent(sink, f"{config.kind} {config.name}", several, explain):
            if config.kind == "audit":
                for entry, folder in zip(config.audits, folders, strict=True):
                    if progress is not None:
                        progress(f"auditing {entry.name} ...")
                    entries.append(_run_audit_entry(config, entry, sink, folder, progress))
            else:
                done = runners[config.kind](config, RunContext(sink, tracking_uri, no_log, progress))
                entries.extend(done.entries)
    except TrackingUnavailableError as exc:
        # The parent run could not be opened or closed: MLflow is down. Entries that ran keep
        # their local report folders. Bad input (an unknown demo scenario) is not this: exit 2.
        tracking_error = str(exc)
    return PipelineOutcome(config.name, config.kind, tuple(entries), tracking_error)


def audit_folders(config: PipelineConfig) -> list[Path]:
    """Each audit's report folder: ``out`` / a safe folder name made from the audit's name
    (:func:`lossaudit.safe_names.folder_name`), never a path the name spells.

    Raises
    ------
    BadInputError
        For a name with no letter or digit (``..``, ``.``, ``///``), or two names that give one
        folder (``a/b`` and ``a-b``; ``Digits`` and ``digits``): one line, before any audit runs.
    """
    from lossaudit.errors import BadInputError
    from lossaudit.safe_names import child_folder, clashes

    out_root = Path(config.resolve(config.out))
    folders = [child_folder(out_root, entry.name, what="audit name") for entry in config.audits]
    for first, second, folder in clashes((e.name for e in config.audits), what="audit name"):
        raise BadInputError(
            f"pipeline {config.path}: audits {first!r} and {second!r} would write one report "
            f"folder {folder!r}: give them names that differ in letters or digits"
        )
    return folders


def _run_audit_entry(
    config: PipelineConfig,
    entry: AuditEntry,
    sink: MlflowSink | None,
    out_dir: Path,
    progress: Progress | None = None,
) -> EntryOutcome:
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.core.findings import Severity
    from lossaudit.pipeline.stages import AuditRequest, run_audit

    try:
        model = config.resolve(entry.model)
        request = AuditRequest(
            model=model,
            data=config.resolve(entry.data),
            label_columns=entry.label_columns,
            train=config.resolve(entry.train) if entry.train else None,
            retrain=entry.retrain,
            reported=tuple(
                ReportedMetric.from_value(k, v, "pipeline", measured_on=entry.reported_on, n=entry.reported_n)
                for k, v in entry.reported.items()
            ),
            out_dir=str(out_dir),
            fail_on=Severity(config.fail_on),
            unsafe=entry.unsafe,
            epochs=entry.epochs,
            seed=entry.seed,
            retrain_seeds=entry.seeds,
            train_batch_size=entry.batch_size,
            thresholds=dict(config.thresholds),
            config=config.rules,
            roc_auc=entry.roc_auc,
        )
        source = None
        if model.startswith(("models:", "runs:")):
            from lossaudit.sources.mlflow import MlflowModelSource

            source = MlflowModelSource(
                model,
                tracking_uri=None if sink is None else sink.tracking_uri,
                read_reported=entry.reported_from_source_run,
            )
        named = named_sink(sink, f"audit {entry.name}")
        told = None if progress is None else (lambda text: progress(f"{entry.name}: {text}"))
        if entry.engine == "spark":
            from lossaudit.pipeline.spark_audit import run_spark_audit

            outcome = run_spark_audit(
                request,
                master=entry.master,
                source=source,
                sinks=() if named is None else (named,),
                progress=told,
            )
        else:
            outcome = run_audit(
                request, source=source, sinks=() if named is None else (named,), progress=told
            )
    except LossauditError as exc:
        return EntryOutcome(entry.name, "error", error=str(exc), exit_code=exc.exit_code)
    report = outcome.report
    run_id = outcome.sink_results.get("mlflow", {}).get("run_id")
    code = EXIT_FINDINGS if report.verdict == "fail" else EXIT_PASS
    error = None
    if outcome.sink_error is not None:
        code, error = outcome.sink_error.exit_code, str(outcome.sink_error)
    return EntryOutcome(
        entry.name,
        report.verdict,
        report.codes,
        folder=str(out_dir),
        run_id=None if run_id is None else str(run_id),
        error=error,
        exit_code=code,
        findings=tuple({"audit": entry.name, **f.to_dict()} for f in report.findings),
    )


def named_sink(sink: MlflowSink | None, subject: str) -> MlflowSink | None:
    """The pipeline's sink for one entry (same store, experiment and parent); its run is named
    after ``subject`` and the verdict (``audit iris: fail LA101``)."""
    if sink is None:
        return None
    from dataclasses import replace

    return replace(sink, run_subject=subject, logged=[])


def set_tags(sink: MlflowSink, run_id: str, tags: Mapping[str, str]) -> None:
    from lossaudit.tracking.store import connect, resolve_tracking_uri

    client = connect(resolve_tracking_uri(sink.tracking_uri))
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def record_project_outcome(outcome: PipelineOutcome) -> None:
    """For the project run of ``mlflow run`` (:mod:`lossaudit.pipeline.project_run`): the pipeline's
    verdict and codes, each entry's report folder under its folder's name (the entry's name made
    safe, :func:`audit_folders`; each registry version's under ``<model>-v<version>/``), the
    pipeline's JSON document (``pipeline.json``; a registry job's ``summary.json``) and links to
    the runs it logged. Tags are written when the command exits, with its exit code."""
    from lossaudit.pipeline.project_run import record_result

    document = outcome.to_dict()
    text = json.dumps(document, indent=2, default=str) + "\n"
    tags = {"lossaudit.pipeline": outcome.pipeline, "lossaudit.kind": outcome.kind}
    if outcome.document is not None:
        versions = [v for v in document.get("versions") or () if isinstance(v, Mapping)]
        codes = [str(c) for v in versions if not v.get("skipped") for c in v.get("codes") or ()]
        folders = [
            (Path(str(v["report_dir"])).name, str(v["report_dir"])) for v in versions if v.get("report_dir")
        ]
        errors = [f"{v.get('model')} v{v.get('version')}: {v['error']}" for v in versions if v.get("error")]
        if document.get("summary_error"):
            errors.append(str(document["summary_error"]))
        if document.get("summary_run"):
            tags["lossaudit.summary_run"] = str(document["summary_run"])
        record_result(
            outcome.verdict,
            codes,
            subject=outcome.pipeline,
            folders=folders,
            files={"summary.json": text},
            tags=tags,
            error=errors[0] if errors else None,
        )
        return
    runs = [e.run_id for e in outcome.entries if e.run_id]
    if runs:
        tags["lossaudit.audit_runs"] = ",".join(runs)
    errors = [f"{e.name}: {e.error}" for e in outcome.entries if e.error]
    if outcome.tracking_error is not None:
        errors.append(outcome.tracking_error)
    record_result(
        outcome.verdict,
        [c for e in outcome.entries for c in e.codes],
        summary=verdict_explanation(outcome.kind, outcome.entries),
        subject=outcome.pipeline,
        # The artifact path is the folder's safe name, never the entry's name as written.
        folders=[(Path(e.folder).name, e.folder) for e in outcome.entries if e.folder],
        files={"pipeline.json": text},
        tags=tags,
        error=errors[0] if errors else None,
    )
