"""The local report folder: every format of one audit, written before anything goes to MLflow.

Files: ``report.md``, ``report.html``, ``findings.sarif``, ``junit.xml``, ``confusion_matrix.png``
(when the report has a confusion matrix and matplotlib is installed), ``comparison.png`` (when a
reported number has a recomputed counterpart) and ``report.json``.

Each file is written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic on POSIX and Windows), so an interrupted run never leaves half a file.
``report.json`` is written last: a folder that has it is complete, which is what the MLflow sink
and ``lossaudit log REPORT_DIR`` rely on. Files of an earlier audit into the same folder that
this one does not produce (a confusion matrix the new report lacks) are removed, so the folder
never mixes two audits. Imports no TensorFlow and no MLflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from lossaudit.core.report import AuditReport
from lossaudit.errors import BadInputError

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FINDINGS_SARIF = "findings.sarif"
JUNIT_XML = "junit.xml"
CONFUSION_PNG = "confusion_matrix.png"
COMPARISON_PNG = "comparison.png"
GX_RESULT_JSON = "gx_result.json"
GX_DOCS_DIR = "gx_docs"
ALL_FILES = (
    REPORT_MD,
    REPORT_HTML,
    FINDINGS_SARIF,
    JUNIT_XML,
    CONFUSION_PNG,
    COMPARISON_PNG,
    GX_RESULT_JSON,
    REPORT_JSON,
)
ALL_DIRS = (GX_DOCS_DIR,)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def prepare_folder(out_dir: str | Path) -> Path:
    """Create ``out_dir`` (and its parents); one-line :class:`BadInputError` when impossible."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise BadInputError(f"report folder {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create report folder {folder}: {_reason(exc)}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write to report folder {folder}: permission denied")
    return folder


def check_writable(out_dir: str | Path) -> None:
    """Refuse, before any work, a report folder that could not be written: a file in its place or
    on its path, or a nearest existing folder without write permission (a read-only mount).
    Creates nothing."""
    folder = Path(out_dir).absolute()
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        where = "exists and is not a folder" if probe == folder else f"is under {probe}, which is a file"
        raise BadInputError(f"report folder {out_dir} {where}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write to report folder {out_dir}: {probe} is not writable")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and ``os.replace``."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # mkstemp creates 0600; a report is meant to be read
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _utf8(text: str) -> bytes:
    """UTF-8 that cannot fail: the formats already escape lone surrogates (a file name that is not
    UTF-8); one that got through anyway is written as ``\\udcxx`` rather than losing the folder."""
    return text.encode("utf-8", errors="backslashreplace")


def render_all(report: AuditReport, artifact_uri: str | None = None) -> dict[str, bytes]:
    """Every file of the folder, rendered in memory (name -> bytes), ``report.json`` last."""
    from lossaudit.formats.html import render_html
    from lossaudit.formats.junit import render_junit
    from lossaudit.formats.markdown import render_markdown
    from lossaudit.formats.plots import comparison_chart_png, confusion_matrix_png
    from lossaudit.formats.sarif import render_sarif

    files: dict[str, bytes] = {
        REPORT_MD: _utf8(render_markdown(report)),
        REPORT_HTML: _utf8(render_html(report)),
        FINDINGS_SARIF: _utf8(json.dumps(render_sarif(report, artifact_uri), indent=2) + "\n"),
        JUNIT_XML: _utf8(render_junit(report)),
    }
    confusion = confusion_matrix_png(report)
    if confusion is not None:
        files[CONFUSION_PNG] = confusion
    comparison = comparison_chart_png(report)
    if comparison is not None:
        files[COMPARISON_PNG] = comparison
    files[REPORT_JSON] = _utf8(report.to_json() + "\n")
    return files


def write_report_folder(
    report: AuditReport,
    out_dir: str | Path,
    *,
    artifact_uri: str | None = None,
    attachments: Mapping[str, bytes] | None = None,
    attached_dirs: Mapping[str, Path] | None = None,
) -> dict[str, Path]:
    """Write the report folder and return file name -> path, in the order written.

    Parameters
    ----------
    report : AuditReport
    out_dir : str or Path
        Created with its parents when missing.
    artifact_uri : str, optional
        Passed to :func:`lossaudit.formats.sarif.render_sarif`: the file SARIF results point at
        when the report context names none.
    attachments : mapping of file name to bytes, optional
        Further files of the audit (the Great Expectations result, ``gx_result.json``).
    attached_dirs : mapping of folder name to an existing folder, optional
        Folders copied in whole (the Great Expectations Data Docs site, ``gx_docs``).

    Raises
    ------
    BadInputError
        ``out_dir`` is a file, cannot be created, or a file in it cannot be written.
    """
    folder = prepare_folder(out_dir)
    # Render everything before touching the folder: a rendering error leaves the old folder intact.
    rendered = render_all(report, artifact_uri)
    report_json = rendered.pop(REPORT_JSON)
    files = {**rendered, **(attachments or {}), REPORT_JSON: report_json}
    dirs = dict(attached_dirs or {})
    written: dict[str, Path] = {}
    try:
        # The previous audit's report.json goes first: from here until the new one lands, the
        # folder does not claim to be complete.
        stale = [name for name in ALL_FILES if name not in files or name == REPORT_JSON]
        for name in stale:
            (folder / name).unlink(missing_ok=True)
        for name in ALL_DIRS:
            shutil.rmtree(folder / name, ignore_errors=True)
        for name, source in dirs.items():
            shutil.copytree(source, folder / name)
            written[name] = folder / name
        for name, data in files.items():
            path = folder / name
            write_atomic(path, data)
            written[name] = path
    except OSError as exc:
        raise BadInputError(f"cannot write report folder {folder}: {_reason(exc)}") from None
    return written
