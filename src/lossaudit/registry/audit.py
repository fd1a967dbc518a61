"""Scheduled audits over the MLflow Model Registry: find versions, audit each, tag the results.

One job (:func:`run_registry_audit`):

1. connect to the tracking server (a server that does not answer ends the job with exit 3);
2. find the model versions: ``search_model_versions`` with the name pattern and the user's
   filter, paged; with ``alias`` only the version each model's alias points to
   (``get_model_version_by_alias``: search results do not carry aliases);
3. for each version, find its eval data -- an explicit mapping (registered model name or glob ->
   data path), else the version tag ``lossaudit.data`` (a path or an artifact URI such as
   ``runs:/<run id>/eval/data.npz``), else the dataset input logged on the version's source run
   (``mlflow.log_input``: the dataset's ``source`` JSON holds a ``uri`` or ``path``; eval-like
   contexts first) -- and hash it with the audit pipeline's own ``data_sha256``;
4. skip a version whose tags say it was already audited with the same data hash, rules version
   and failing severity, with no failed attempt since (unless ``force``); audit the others in
   worker processes (:mod:`lossaudit.registry.workers`), or with ``engine="spark"`` as Spark jobs
   on the executors (:mod:`lossaudit.registry.spark_workers`, Spark started only when a version is
   to be audited), each as an MLflow run nested under one summary run;
5. write the outcome back as version tags, as each version finishes: a fresh verdict writes
   ``lossaudit.verdict``, ``lossaudit.codes``, ``lossaudit.audit_run``, ``lossaudit.audited_at``,
   ``lossaudit.data_hash`` and ``lossaudit.rules_version`` (and removes the error tags); a version
   that cannot be audited now keeps its earlier pass or fail verdict tags untouched and gets
   ``lossaudit.error``, ``lossaudit.error_kind`` and ``lossaudit.error_at``; a version with no
   pass or fail verdict is tagged ``lossaudit.verdict=error`` with the reason;
6. with ``promote_alias``, point that alias of each model at its newest passing version; an alias
   on a version whose latest verdict is fail or error is moved off it, or removed;
7. close the summary run with metrics ``n_versions``, ``n_passed``, ``n_failed``, ``n_error``,
   ``n_audited``, ``n_skipped``, ``n_not_audited``, ``n_fresh``, ``n_stored`` and the artifacts
   ``summary.json`` and ``summary.md``.

One version's failure never stops the others. The job's verdict is the worst current verdict of
every selected version (pass < fail < error): a fresh verdict for a version audited now, the
stored ``lossaudit.verdict`` for a skipped one (a stored ``error`` counts), and ``error`` for a
version this job could not audit (its stored verdict is kept and shown, but the job could not
confirm it). Exit code: 2 for error, 1 for fail, 0 for pass; 3 when MLflow could not be reached.

This module is the job: it runs the steps in order, turns worker results and skips into one
:class:`~lossaudit.registry.results.VersionResult` per version, and keeps the summary run. The
steps' parts live beside it: :mod:`~lossaudit.registry.options` (what the job does),
:mod:`~lossaudit.registry.versions` (step 2), :mod:`~lossaudit.registry.evaldata` (step 3),
:mod:`~lossaudit.registry.workers` and :mod:`~lossaudit.registry.spark_workers` (step 4's
audits), :mod:`~lossaudit.registry.tags` (steps 4 and 5: what the tags say, writing them),
:mod:`~lossaudit.registry.aliases` (step 6), :mod:`~lossaudit.registry.results` and
:mod:`~lossaudit.registry.render` (step 7's summary).

MLflow is imported inside the functions that talk to it; importing this module is cheap.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError, LossauditError, TrackingUnavailableError
from lossaudit.registry.aliases import promote_alias
from lossaudit.registry.datafiles import is_artifact_uri
from lossaudit.registry.evaldata import DataResolver, EvalData, NoEvalDataError
from lossaudit.registry.render import render_markdown
from lossaudit.registry.results import (
    AUDITED,
    FRESH,
    JUDGED,
    NOT_AUDITED,
    SKIPPED,
    STORED,
    AliasMove,
    RegistrySummary,
    VersionResult,
)
from lossaudit.registry.tags import (
    TAG_AUDIT_RUN,
    TAG_AUDITED_AT,
    TAG_ERROR,
    TAG_ERROR_AT,
    TAG_ERROR_KIND,
    TAG_VERDICT,
    already_audited,
    settle,
    stored_codes,
    timestamp,
    write_version_tags,
)
from lossaudit.registry.versions import VersionRef, find_versions
from lossaudit.registry.workers import (
    ERROR_BAD_INPUT,
    ERROR_NO_DATA,
    ERROR_UNAVAILABLE,
    Result,
    Task,
    audit_version,
    error_result,
    run_tasks,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from lossaudit.registry.options import RegistryOptions
    from lossaudit.registry.spark_workers import SparkTasks
    from lossaudit.tracking.store import TrackingTarget


def _line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def _version_folder(name: str, version: str) -> str:
    """``<model>-v<version>``: a safe, bounded folder name; a registered name that had to be changed
    (spaces, case, length) gets a short hash of itself, so "my model" and "my-model", or "Digits"
    and "digits" on a case-insensitive disk, never share a folder."""
    import hashlib

    from lossaudit.safe_names import folder_name

    slug = folder_name(name, what="registered model name", fallback="model")
    if slug != name or slug != slug.lower():
        slug = f"{slug[:80]}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return f"{slug}-v{folder_name(str(version), what='version', fallback='0')}"


def _skipped_result(ref: VersionRef, data: EvalData, digest: str) -> VersionResult:
    tags = ref.tags
    return VersionResult(
        model=ref.name,
        version=ref.version,
        verdict=tags.get(TAG_VERDICT, ""),
        status=SKIPPED,
        verdict_source=STORED,
        codes=stored_codes(tags),
        data=data.path,
        data_origin=data.origin,
        data_hash=digest,
        audit_run=tags.get(TAG_AUDIT_RUN) or None,
        audited_at=tags.get(TAG_AUDITED_AT) or None,
        error=tags.get(TAG_ERROR) or None,
        error_kind=tags.get(TAG_ERROR_KIND) or None,
        error_at=tags.get(TAG_ERROR_AT) or None,
    )


def _result_from_worker(result: Mapping[str, Any], data: EvalData | None, audited_at: str) -> VersionResult:
    verdict = str(result["verdict"])
    judged = verdict in JUDGED
    return VersionResult(
        model=str(result["model"]),
        version=str(result["version"]),
        verdict=verdict,
        status=AUDITED if judged else NOT_AUDITED,
        verdict_source=FRESH,
        codes=tuple(result.get("codes") or ()),
        data=None if data is None else data.path,
        data_origin=None if data is None else data.origin,
        data_hash=result.get("data_hash"),
        audit_run=result.get("audit_run"),
        audit_run_url=result.get("audit_run_url"),
        audited_at=audited_at,
        seconds=float(result.get("seconds") or 0.0),
        error=result.get("error"),
        error_kind=result.get("error_kind"),
        error_at=None if judged else audited_at,
        report_dir=result.get("report_dir"),
        findings=tuple(result.get("findings") or ()),
        peak_rss_mb=result.get("peak_rss_mb"),
    )


class _SummaryRun:
    """The job's parent run: opened before the audits (they nest under it), closed with the
    summary's metrics and artifacts."""

    def __init__(
        self, client: MlflowClient, target: TrackingTarget, options: RegistryOptions, rules: str
    ) -> None:
        from lossaudit import __version__
        from lossaudit.tracking.store import ensure_experiment, run_url

        self.client = client
        self.experiment_id = ensure_experiment(client, options.experiment, target.artifact_root)
        run = client.create_run(
            self.experiment_id,
            run_name=f"registry audit {timestamp()}",
            tags={
                "lossaudit.kind": "registry",
                "lossaudit.version": __version__,
                "lossaudit.rules_version": rules,
            },
        )
        self.run_id: str = run.info.run_id
        self.url = run_url(target, self.experiment_id, self.run_id)
        from mlflow.entities import Param

        params = {
            "name": options.name or "*",
            "alias": options.alias or "",
            "filter": options.filter or "",
            "engine": options.engine,
            "force": str(options.force).lower(),
            "promote_alias": options.promote_alias or "",
            "fail_on": options.fail_on,
        }
        if options.engine == "local":
            params["workers"] = str(options.workers)
        client.log_batch(self.run_id, params=[Param(k, v[:6000]) for k, v in params.items()])

    def close(self, summary: RegistrySummary) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        metrics = {**summary.counts, "seconds": summary.seconds}
        # On Spark, where the versions ran and how many at once are known once Spark has started
        # (an active session may be on another master than the one asked for): logged at the end.
        params = (
            {
                "workers": str(summary.workers),
                "master": summary.master or "",
                "spark_version": summary.spark_version or "",
            }
            if summary.engine == "spark"
            else {}
        )
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, v[:6000]) for k, v in params.items()],
        )
        codes = dict.fromkeys(c for v in summary.versions for c in v.codes)
        self.client.set_tag(self.run_id, "lossaudit.verdict", summary.verdict)
        self.client.set_tag(self.run_id, "lossaudit.codes", ",".join(codes))
        with tempfile.TemporaryDirectory(prefix="lossaudit-registry-summary-") as tmp:
            folder = Path(tmp)
            (folder / "summary.json").write_text(summary.to_json() + "\n", encoding="utf-8")
            (folder / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
            self.client.log_artifacts(self.run_id, str(folder))
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.client.set_terminated(self.run_id, "FAILED")


def run_registry_audit(
    options: RegistryOptions,
    *,
    task_fn: Callable[[Task], Result] = audit_version,
    on_version: Callable[[VersionResult], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RegistrySummary:
    """Audit the registry versions ``options`` select and write the results back as tags.

    Parameters
    ----------
    options : what to audit and how (see :class:`RegistryOptions`).
    task_fn : the per-version audit run in the workers; a module-level function taking and
        returning plain dicts (:func:`lossaudit.registry.workers.audit_version`).
    on_version : called with each version's result as soon as it is tagged (progress lines).
    progress : called with a short line of where the job is (finding versions, each version's
        eval data, ``3 of 8 versions: digits v2: pass (fresh)``, the alias, the summary run), for
        a live status line; it never changes the summary.

    Returns
    -------
    RegistrySummary
        Its ``exit_code`` is the command's, from the worst current verdict of the selected
        versions, fresh or stored: 0 pass, 1 a version's verdict is fail, 2 a version's verdict is
        error or it could not be audited now; 3 the summary run could not be finished.

    Raises
    ------
    TrackingUnavailableError
        The tracking server does not answer at the start.
    BadInputError
        The options select no version, or the filter is not valid.
    """
    from mlflow.exceptions import MlflowException

    from lossaudit.tracking import rules_version
    from lossaudit.tracking.store import connect, resolve_tracking_uri

    start = time.perf_counter()
    tell = progress or _silent
    spark: SparkTasks | None = None
    if options.engine == "spark":
        from lossaudit.registry.spark_workers import SparkTasks
        from lossaudit.spark.session import require_pyspark

        require_pyspark()  # one line before MLflow is asked anything
        spark = SparkTasks(options.master, options.workers)
    target = resolve_tracking_uri(options.tracking_uri)
    client = connect(target)
    rules = rules_version(options.rules)
    try:
        tell("finding versions")
        refs = find_versions(client, options)
        summary_run = _SummaryRun(client, target, options, rules)
    except MlflowException as exc:
        raise _mlflow_failure(target, exc) from None
    resolver = DataResolver(client, target, options)
    results: dict[tuple[str, str], VersionResult] = {}
    refs_by_key = {(r.name, r.version): r for r in refs}
    data_by_key: dict[tuple[str, str], EvalData | None] = {}

    def status(text: str) -> None:
        tell(f"{len(results)} of {len(refs)} versions: {text}")

    def record(ref: VersionRef, result: VersionResult) -> None:
        result = settle(ref, result)
        try:
            write_version_tags(client, ref, result, rules, options.fail_on)
        except (MlflowException, OSError) as exc:
            what = f"audited ({result.verdict})" if result.status == AUDITED else f"error ({result.error})"
            failed = replace(
                result,
                status=NOT_AUDITED,
                error=f"{what} but its tags could not be written: {_line(exc)}",
                error_kind=ERROR_UNAVAILABLE,
                error_at=timestamp(),
            )
            result = settle(ref, failed)
        results[(ref.name, ref.version)] = result
        status(f"{result.label}: {result.describe()}")
        if on_version is not None:
            on_version(result)

    try:
        tasks = _plan(options, refs, resolver, rules, summary_run.run_id, target, record, data_by_key, status)

        def on_result(task: Task, outcome: Result) -> None:
            key = (str(task["model"]), str(task["version"]))
            record(refs_by_key[key], _result_from_worker(outcome, data_by_key.get(key), timestamp()))

        workers = options.workers
        if spark is not None and tasks:
            status("starting Spark")
            spark.start()
            workers = spark.slots()
            where = spark.describe()["master"]
            status(f"auditing {len(tasks)} on Spark {where}, up to {min(workers, len(tasks))} at once")
            spark.run(tasks, on_result=on_result, fn=task_fn)
        elif tasks:
            status(f"auditing {len(tasks)} with {min(workers, len(tasks))} worker(s)")
            run_tasks(tasks, workers=workers, on_result=on_result, fn=task_fn)
        ordered = tuple(results[(r.name, r.version)] for r in refs)
        moves: list[AliasMove] = []
        summary_error: str | None = None
        if options.promote_alias:
            tell(f"moving alias {options.promote_alias!r}")
            try:
                moves = promote_alias(client, ordered, options.promote_alias)
            except MlflowException as exc:
                summary_error = f"alias {options.promote_alias!r} not moved: {_line(exc)}"
        summary = RegistrySummary(
            versions=ordered,
            alias_moves=tuple(moves),
            summary_run=summary_run.run_id,
            summary_run_url=summary_run.url,
            summary_error=summary_error,
            tracking_uri=target.uri,
            experiment=options.experiment,
            rules_version=rules,
            workers=workers,
            engine=options.engine,
            master=None if spark is None else spark.describe()["master"],
            spark_version=None if spark is None else spark.describe()["spark_version"],
            seconds=time.perf_counter() - start,
        )
        tell("closing the summary run")
        try:
            summary_run.close(summary)
        except (MlflowException, OSError) as exc:
            summary_run.fail()
            message = f"the summary run {summary_run.run_id} could not be finished: {_line(exc)}"
            summary = replace(summary, summary_error=message)
        return summary
    except BaseException:
        summary_run.fail()
        raise
    finally:
        resolver.close()


def _plan(
    options: RegistryOptions,
    refs: Sequence[VersionRef],
    resolver: DataResolver,
    rules: str,
    parent_run_id: str,
    target: TrackingTarget,
    record: Callable[..., None],
    data_by_key: dict[tuple[str, str], EvalData | None],
    status: Callable[[str], None],
) -> list[Task]:
    """Resolve and hash each version's data; record the versions that are skipped or cannot be
    audited; return tasks for the others."""
    tasks: list[Task] = []
    for ref in refs:
        key = (ref.name, ref.version)
        base: Task = {"model": ref.name, "version": ref.version}
        if ref.status.upper() != "READY":
            reason = f"the version's registration status is {ref.status}, not READY"
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_BAD_INPUT, reason), None, timestamp()))
            continue
        status(f"eval data of {ref.label}")
        try:
            data = resolver.resolve(ref)
            digest = resolver.data_hash(data)
        except NoEvalDataError as exc:
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_NO_DATA, str(exc)), None, timestamp()))
            continue
        except TrackingUnavailableError as exc:
            data_by_key[key] = None
            record(
                ref, _result_from_worker(error_result(base, ERROR_UNAVAILABLE, str(exc)), None, timestamp())
            )
            continue
        except LossauditError as exc:
            data_by_key[key] = None
            record(ref, _result_from_worker(error_result(base, ERROR_BAD_INPUT, str(exc)), None, timestamp()))
            continue
        data_by_key[key] = data
        if not options.force and already_audited(ref, digest, rules, options.fail_on):
            record(ref, _skipped_result(ref, data, digest))
            continue
        tasks.append(
            {
                **base,
                "model_uri": ref.uri,
                "data": data.path,
                # An executor on another machine cannot read the driver's download: it fetches
                # the artifact itself.
                "data_uri": data.uri if is_artifact_uri(data.uri) else None,
                "data_hash": digest,
                "label_columns": list(options.label_columns),
                "tracking_uri": target.client_uri,  # what the worker connects with; not printed
                "experiment": options.experiment,
                "parent_run_id": parent_run_id,
                "out_dir": None
                if options.out_dir is None
                else str(Path(options.out_dir) / _version_folder(ref.name, ref.version)),
                "fail_on": options.fail_on,
                "rules": dict(options.rules),
                "batch_size": options.batch_size,
            }
        )
    return tasks


def _silent(_text: str) -> None:
    pass


def _mlflow_failure(target: TrackingTarget, exc: BaseException) -> LossauditError:
    """An MLflow error at the start of the job: the server went away (exit 3) or refused (exit 2)."""
    from lossaudit.tracking.store import check_reachable

    if target.is_http:
        try:
            check_reachable(target)
        except TrackingUnavailableError as down:
            return down
    return BadInputError(f"MLflow refused the registry audit: {_line(exc)}")
