"""The project run: what ``mlflow run`` opened for this process, and the verdict it carries.

``mlflow run`` creates a run before it starts the entry point's command and passes it in the
child's environment (``MLFLOW_RUN_ID``, with ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_ID``;
``get_run_env_vars`` in ``mlflow/projects/utils.py``). When the command exits non-zero, MLflow
marks that run FAILED and ``mlflow run`` itself exits 1 whatever the code was (``_wait_for`` in
``mlflow/projects/__init__.py``, ``sys.exit(1)`` in ``mlflow/cli``): a CI job cannot tell a failing
audit (1) from bad input (2) or an unreachable server (3) by the exit code of ``mlflow run``.

So, under ``mlflow run``, every ``lossaudit`` command leaves its outcome on the project run before
it exits:

* tags ``lossaudit.verdict`` (``pass``, ``fail`` or ``error``), ``lossaudit.codes`` (comma list of
  finding codes), ``lossaudit.exit_code`` (the code lossaudit exited with), ``lossaudit.command``,
  ``lossaudit.version``, ``lossaudit.rules_version``, ``lossaudit.error`` (the one error line, when
  there is one), links to the audit runs, and a ``mlflow.note.content`` summary;
* the report folder as artifacts: one audit's folder at the artifact root (``report.json``,
  ``report.md``, ...; for ``check``, the folder written from its report), a pipeline's folders
  under ``<entry name>/`` beside ``pipeline.json`` (or ``summary.json`` for a registry job).

Audits themselves are nested child runs of the project run, with their params, metrics and their
own copy of the folder (see :mod:`lossaudit.sinks.mlflow`): the project run carries the entry
point's parameters (logged by MLflow), the verdict and the folder.

The commands :func:`record_audit`, :func:`record_report` or :func:`record_result` what they
produced; :func:`project_run_verdict` (around the whole CLI in ``lossaudit.cli.main``) knows the
real exit code, including Typer's usage errors, and writes the tags. Importing this module imports
no MLflow; nothing talks to MLflow unless ``MLFLOW_RUN_ID`` is set.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import EXIT_FINDINGS, EXIT_PASS, EXIT_TRACKING_UNAVAILABLE, LossauditError
from lossaudit.tracking.store import project_run_id

if TYPE_CHECKING:
    from lossaudit.core.report import AuditReport
    from lossaudit.pipeline.stages import AuditOutcome
    from lossaudit.sinks.mlflow import MlflowSink

VERDICT_TAG = "lossaudit.verdict"
CODES_TAG = "lossaudit.codes"
EXIT_CODE_TAG = "lossaudit.exit_code"
ERROR_TAG = "lossaudit.error"
MAX_TAG_LENGTH = 8000
MAX_NOTE_LENGTH = 5000


@dataclass
class ProjectRecord:
    """What the command produced, for the project run."""

    verdict: str | None = None
    codes: tuple[str, ...] = ()
    folders: list[tuple[str, Path]] = field(default_factory=list)
    """(artifact path, local folder): ``""`` is the artifact root."""
    reports: list[tuple[str, AuditReport]] = field(default_factory=list)
    """Reports without a folder (``check``): written to a temporary folder when logged."""
    files: dict[str, str] = field(default_factory=dict)
    """Further artifacts at the root: file name -> text."""
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    report: Mapping[str, Any] | None = None
    """The single report's dict, for the run's note."""
    summary: str | None = None
    """Why a pipeline's verdict is what it is, for the run's note."""
    subject: str | None = None
    """What the command ran (a pipeline's name), for the run's name."""


_record = ProjectRecord()


def current_record() -> ProjectRecord:
    """The record of this process so far (empty until a command records its outcome)."""
    return _record


def reset_record() -> None:
    global _record
    _record = ProjectRecord()


def record_result(
    verdict: str,
    codes: Sequence[str] = (),
    *,
    folders: Sequence[tuple[str, str | Path]] = (),
    files: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    error: str | None = None,
    summary: str | None = None,
    subject: str | None = None,
) -> None:
    """Record a command's outcome: its verdict, finding codes, report folders and extra tags."""
    global _record
    _record = ProjectRecord(
        verdict=verdict,
        codes=tuple(dict.fromkeys(codes)),
        folders=[(path, Path(folder)) for path, folder in folders],
        files=dict(files or {}),
        tags=dict(tags or {}),
        error=error,
        summary=summary,
        subject=subject,
    )


def record_report(report: AuditReport, folder: str | Path | None = None) -> None:
    """Record one report: its folder when one was written, else the report itself (``check``)."""
    global _record
    _record = ProjectRecord(
        verdict=report.verdict,
        codes=tuple(report.codes),
        folders=[] if folder is None else [("", Path(folder))],
        reports=[("", report)] if folder is None else [],
        report=report.to_dict(),
    )


def record_audit(outcome: AuditOutcome, sink: MlflowSink | None) -> None:
    """Record ``lossaudit audit``'s outcome: the report, its folder and the audit run it logged."""
    record_report(outcome.report, outcome.folder)
    if sink is not None and sink.logged:
        _record.tags["lossaudit.audit_run"] = sink.logged[-1].run_id


def project_verdict(exit_code: int, recorded: str | None) -> str:
    """``error`` for bad input, internal errors and anything but 0/1/3; else the recorded verdict,
    else what the exit code says."""
    if exit_code not in (EXIT_PASS, EXIT_FINDINGS, EXIT_TRACKING_UNAVAILABLE):
        return "error"
    if recorded is not None:
        return recorded
    return {EXIT_PASS: "pass", EXIT_FINDINGS: "fail"}.get(exit_code, "error")


def project_tags(
    exit_code: int,
    record: ProjectRecord,
    *,
    error: str | None = None,
    verdict: str | None = None,
    command: str | None = None,
) -> dict[str, str]:
    """The project run's tags for a command that exits with ``exit_code``."""
    from lossaudit import __version__
    from lossaudit.tracking import rules_version

    final = verdict or project_verdict(exit_code, record.verdict)
    # A pipeline's own codes; with bad input and no report there are none.
    codes = record.codes if record.verdict is not None else ()
    tags = {
        VERDICT_TAG: final,
        CODES_TAG: ",".join(codes),
        EXIT_CODE_TAG: str(exit_code),
        "lossaudit.version": __version__,
        "lossaudit.rules_version": rules_version(),
    }
    if command:
        tags["lossaudit.command"] = command
    tags.update(record.tags)
    message = error or record.error
    if message:
        tags[ERROR_TAG] = message
    tags["mlflow.note.content"] = project_note(final, codes, exit_code, message, record, command)
    # `mlflow run` names the run at random; the name says what ran and what it said.
    tags["mlflow.runName"] = project_run_name(final, record, command)
    return {k: v[:MAX_TAG_LENGTH] for k, v in tags.items()}


def project_run_name(verdict: str, record: ProjectRecord, command: str | None) -> str:
    """``lossaudit audit cce.keras: fail LA101``, ``lossaudit run demo: pass``."""
    if record.report is not None and verdict == record.verdict:
        from lossaudit.sinks.mlflow import default_run_name

        return f"lossaudit {default_run_name(record.report)}"
    what = " ".join(part for part in ("lossaudit", command, record.subject) if part)
    return f"{what}: {verdict}"


def project_note(
    verdict: str,
    codes: Sequence[str],
    exit_code: int,
    error: str | None,
    record: ProjectRecord,
    command: str | None,
) -> str:
    """The run's description in the MLflow UI (Markdown)."""
    title = f"lossaudit {command}" if command else "lossaudit"
    lines = [f"**{title}: {verdict}** (exit code {exit_code})", ""]
    if error:
        lines += [f"Error: {error}", ""]
    findings = [] if record.report is None else list(record.report.get("findings") or ())
    for finding in findings:
        if isinstance(finding, Mapping):
            lines.append(f"- `{finding.get('code')}` {finding.get('severity')}: {finding.get('message')}")
    if record.summary:
        lines += [record.summary, ""]
    if not findings and codes:
        lines.append("Codes: " + ", ".join(codes))
    elif not findings and record.verdict is not None:
        lines.append("No findings.")
    if record.folders or record.reports:
        lines += ["", "Report: this run's artifacts (report.html, report.md, report.json)."]
    text = "\n".join(lines).strip()
    return text if len(text) <= MAX_NOTE_LENGTH else text[: MAX_NOTE_LENGTH - 3] + "..."


def _log_artifacts(client: Any, run_id: str, record: ProjectRecord) -> None:
    for path, folder in record.folders:
        if folder.is_dir():
            client.log_artifacts(run_id, str(folder), artifact_path=path or None)
    if not record.reports and not record.files:
        return
    from lossaudit.sinks.local import write_report_folder

    with tempfile.TemporaryDirectory(prefix="lossaudit-project-") as tmp:
        root = Path(tmp)
        for path, report in record.reports:
            write_report_folder(report, root / path if path else root)
        for name, text in record.files.items():
            (root / name).write_text(text, encoding="utf-8")
        client.log_artifacts(run_id, str(root))


def _line(exc: BaseException) -> str:
    from lossaudit.tracking.http import redact_text

    text = str(exc).strip() or type(exc).__name__
    return redact_text(text.splitlines()[0])[:300]


def _warn(message: str) -> None:
    sys.stderr.write(f"lossaudit: error: {message}\n")
    sys.stderr.flush()


def finish_project_run(
    exit_code: int,
    *,
    error: str | None = None,
    verdict: str | None = None,
    command: str | None = None,
) -> int:
    """Under ``mlflow run``: tag the project run and log the recorded report folders; return the
    exit code to leave with.

    Outside ``mlflow run`` nothing happens. When the project run cannot be reached or written,
    one line says so on stderr and a passing or failing command exits 3 instead (2 and 4 stay).
    """
    run_id = project_run_id()
    if run_id is None:
        return exit_code
    record = _record
    from lossaudit.tracking.store import connect, resolve_tracking_uri

    target = resolve_tracking_uri(None)
    escalated = exit_code if exit_code not in (EXIT_PASS, EXIT_FINDINGS) else EXIT_TRACKING_UNAVAILABLE
    try:
        client = connect(target)
        client.get_run(run_id)
    except Exception as exc:
        _warn(f"the MLflow project run {run_id} in {target.uri} cannot be tagged: {_line(exc)}")
        return escalated
    artifacts_error: str | None = None
    try:
        _log_artifacts(client, run_id, record)
    except Exception as exc:
        artifacts_error = f"the report folder could not be logged to the project run: {_line(exc)}"
        exit_code = escalated
    tags = project_tags(exit_code, record, error=error or artifacts_error, verdict=verdict, command=command)
    try:
        from mlflow.entities import RunTag

        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    except Exception as exc:
        _warn(f"the MLflow project run {run_id} in {target.uri} cannot be tagged: {_line(exc)}")
        return escalated
    if artifacts_error is not None:
        _warn(artifacts_error)
    return exit_code


def _is_exit(exc: BaseException) -> bool:
    """Click's or Typer's ``Exit``: a plain exit with a code, not an error."""
    kind = type(exc)
    return kind.__name__ == "Exit" and kind.__module__.split(".")[0] in ("click", "typer")


def error_line(exc: BaseException | None) -> str | None:
    """The one error line behind an exit: the :class:`LossauditError` or Click usage error in
    the exception's context chain (``guarded`` raises ``typer.Exit`` while handling it), or an
    internal error; None for a plain exit."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, LossauditError):
            return _line(exc)
        # A usage error (a ClickException: click's, or the copy newer Typer versions vendor).
        format_message = getattr(exc, "format_message", None)
        if callable(format_message) and hasattr(exc, "exit_code"):
            message = str(format_message()).strip()
            return message.splitlines()[0][:300] if message else None
        if isinstance(exc, Exception) and not _is_exit(exc):
            return f"internal error: {type(exc).__name__}: {_line(exc)}"
        exc = exc.__cause__ or exc.__context__
    return None


def _exit_int(code: object) -> int:
    if code is None:
        return EXIT_PASS
    if isinstance(code, int):
        return code
    return 1  # sys.exit("message") exits 1


@contextmanager
def project_run_verdict(command: str | None = None) -> Iterator[None]:
    """Around the whole CLI: under ``mlflow run``, tag the project run with the command's exit
    code and verdict before the process exits (see the module docstring). ``command`` defaults to
    the first argument that is not an option (``audit``, ``check``, ``run``)."""
    if project_run_id() is None:
        yield
        return
    if command is None:
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    try:
        yield
    except SystemExit as exc:
        code = _exit_int(exc.code)
        final = finish_project_run(code, error=error_line(exc.__context__), command=command)
        if final != code:
            raise SystemExit(final) from None
        raise
    except BaseException as exc:
        # An uncaught exception (LOSSAUDIT_DEBUG=1 shows tracebacks): Python exits 1.
        with contextlib.suppress(Exception):
            finish_project_run(1, error=error_line(exc), verdict="error", command=command)
        raise
    else:
        final = finish_project_run(EXIT_PASS, command=command)
        if final != EXIT_PASS:
            raise SystemExit(final)


__all__ = [
    "ProjectRecord",
    "current_record",
    "error_line",
    "finish_project_run",
    "project_run_id",
    "project_run_verdict",
    "project_tags",
    "project_verdict",
    "record_audit",
    "record_report",
    "record_result",
    "reset_record",
]
