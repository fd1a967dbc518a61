"""Audit registry versions one at a time, in this process or in a pool of worker processes.

Each worker process is started with the ``spawn`` method (a fork of a process that has touched
TensorFlow or MLflow's HTTP pool can deadlock), imports TensorFlow and Keras once in its
initializer, pins TensorFlow's thread pools to its share of the CPUs, and then audits the
versions it is given one after another. After each version it drops the model
(``keras.backend.clear_session()`` and ``gc.collect()``), and no worker ever holds more than one
version: memory stays at one model per worker.

What crosses the process boundary is plain data: a task dict in, a result dict out (see
:func:`audit_version`). A worker that dies (a segfault in native code, the kernel's OOM killer)
breaks the whole pool (``BrokenProcessPool``); :func:`run_tasks` then finds which of the versions
in flight killed it by auditing each of them alone in a fresh pool, reports that one as crashed,
and goes on with the rest in a fresh pool.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.errors import BadInputError, LossauditError, TrackingUnavailableError

if TYPE_CHECKING:
    from lossaudit.core.compare import ReportedMetric
    from lossaudit.keras.static import StaticModel
    from lossaudit.sources.mlflow import FetchedModel

Task = dict[str, Any]
Result = dict[str, Any]

ERROR_BAD_INPUT = "bad_input"
"""The version's model or data cannot be audited (corrupt artifact, labels that do not fit)."""
ERROR_NO_DATA = "no_data"
"""No eval data could be found for the version."""
ERROR_UNAVAILABLE = "unavailable"
"""MLflow stopped answering while the version was audited."""
ERROR_CRASH = "crash"
"""The worker process died while auditing the version."""
ERROR_INTERNAL = "internal"
"""An unexpected exception (a bug in lossaudit or a library)."""

CRASH_REASON = "the worker process died while auditing this version (native crash or out of memory)"


def threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """TensorFlow intra-/inter-op threads for each of ``workers`` processes: an equal share of
    the CPUs, at least one, so that N workers do not oversubscribe the machine N times over."""
    count = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, count // max(1, workers))


def init_worker(threads: int) -> None:
    """Pool initializer: import TensorFlow and Keras once and size TensorFlow's thread pools.

    The thread counts can only be set before TensorFlow's runtime starts, which is why this runs
    before the worker's first task.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    name_main_module()
    from lossaudit.quiet import hide_pyspark_import_warnings

    hide_pyspark_import_warnings()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras  # noqa: F401  (imported once here so that every task finds it loaded)


def name_main_module() -> None:
    """Give a spawned worker's bare ``__main__`` a file name.

    A ``spawn`` child of ``python -m ...`` (pytest, ``python -m lossaudit``) keeps an empty
    ``__main__`` module. MLflow imports pyspark when it is installed, and pyspark's Spark Connect
    check takes an empty ``__main__`` for a doctest run and calls ``sys.exit(0)``: the worker's
    task would end in a SystemExit instead of an audit.
    """
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None and not hasattr(main, "__file__"):
        main.__file__ = __file__


def release_memory() -> None:
    """Drop what the last audit left in Keras's global state, then collect garbage.

    Keras is not imported just for this: a task that failed before loading a model has nothing
    to clear.
    """
    if "keras" in sys.modules:
        import keras

        keras.backend.clear_session()
    gc.collect()


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


@dataclass(frozen=True)
class FetchedModelSource:
    """The audit pipeline's :class:`~lossaudit.pipeline.stages.ModelSource` for a registry
    version already downloaded into a folder the worker owns (and removes after the audit)."""

    fetched: FetchedModel

    @property
    def uri(self) -> str:
        return self.fetched.ref.uri

    def read_static(self) -> StaticModel:
        from lossaudit.keras.static import read_model_file

        return read_model_file(self.fetched.model_file)

    def load(self, static: StaticModel, *, unsafe: bool, on_note: Callable[[str], None]) -> Any:
        from lossaudit.sources.local import LocalFileSource

        on_note(f"model downloaded from {self.uri} ({self.fetched.tracking_uri})")
        return LocalFileSource(self.fetched.model_file).load(static, unsafe=unsafe, on_note=on_note)

    def context(self) -> dict[str, Any]:
        return self.fetched.context()

    def reported_metrics(self) -> tuple[ReportedMetric, ...]:
        """The source run's attributable metrics, compared like the live evaluate's."""
        return self.fetched.reported_metrics()


def error_result(task: Mapping[str, Any], kind: str, reason: str, seconds: float = 0.0) -> Result:
    """The result of a version that could not be audited."""
    return {
        "model": task["model"],
        "version": task["version"],
        "verdict": "error",
        "codes": [],
        "findings": [],
        "audit_run": None,
        "audit_run_url": None,
        "data_hash": task.get("data_hash"),
        "error": reason,
        "error_kind": kind,
        "seconds": round(seconds, 3),
        "report_dir": None,
        "peak_rss_mb": peak_rss_mb(),
    }


def crash_result(task: Mapping[str, Any]) -> Result:
    """The result of a version whose worker process died."""
    return error_result(task, ERROR_CRASH, CRASH_REASON)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def audit_version(task: Mapping[str, Any]) -> Result:
    """Audit one registry version and log it as an MLflow run; never raises.

    Parameters
    ----------
    task : mapping
        Plain data: ``model``, ``version``, ``model_uri`` (``models:/NAME/VERSION``), ``data``
        (a local eval data file), ``data_uri`` (the artifact URI the driver downloaded ``data``
        from, or None: a Spark executor that cannot see ``data`` downloads it again),
        ``label_columns``, ``tracking_uri``, ``experiment``,
        ``parent_run_id``, ``out_dir`` (the version's report folder, or None), ``fail_on``,
        ``batch_size`` and ``data_hash`` (what the planner computed, echoed in errors).

    Returns
    -------
    dict
        ``verdict`` (``pass``, ``fail`` or ``error``), ``codes``, ``findings`` (finding dicts),
        ``audit_run`` (the MLflow run id), ``data_hash`` (from the audit's own report),
        ``error`` and ``error_kind`` (for ``error``), ``seconds``, ``report_dir`` and
        ``peak_rss_mb`` of the process.
    """
    start = time.perf_counter()
    download_dir = Path(tempfile.mkdtemp(prefix="lossaudit-registry-"))
    try:
        # Worker output goes to stderr: the parent's stdout may be carrying --json.
        with contextlib.redirect_stdout(sys.stderr):
            return _audit(task, download_dir, start)
    except TrackingUnavailableError as exc:
        return error_result(task, ERROR_UNAVAILABLE, _first_line(exc), time.perf_counter() - start)
    except LossauditError as exc:
        return error_result(task, ERROR_BAD_INPUT, _first_line(exc), time.perf_counter() - start)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        return error_result(task, ERROR_INTERNAL, reason, time.perf_counter() - start)
    except SystemExit as exc:
        # A library that exits (code 0 included) must not end the job as if it passed.
        return error_result(task, ERROR_INTERNAL, _exit_reason(exc), time.perf_counter() - start)
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)
        release_memory()


def _audit(task: Mapping[str, Any], download_dir: Path, start: float) -> Result:
    from lossaudit.core.config import RuleConfig
    from lossaudit.core.findings import Severity
    from lossaudit.pipeline.stages import AuditRequest, run_audit
    from lossaudit.sinks.mlflow import MlflowSink
    from lossaudit.sources.mlflow import fetch_model

    model_uri = str(task["model_uri"])
    try:
        fetched = fetch_model(model_uri, tracking_uri=task["tracking_uri"], dst_dir=download_dir)
    except BadInputError as exc:
        raise BadInputError(f"{model_uri}: {exc}") from None
    rules = dict(task.get("rules") or {})
    config = (
        RuleConfig.from_mapping(
            {k: v for k, v in rules.items() if k != "source"}, source=str(rules.get("source", "registry"))
        )
        if rules
        else None
    )
    request = AuditRequest(
        model=model_uri,
        data=eval_data_file(task, download_dir),
        label_columns=tuple(task.get("label_columns") or ()),
        out_dir=task.get("out_dir"),
        fail_on=Severity(str(task.get("fail_on", "error"))),
        config=config,
        batch_size=int(task.get("batch_size", 256)),
    )
    sink = MlflowSink(
        tracking_uri=str(task["tracking_uri"]),
        experiment=str(task["experiment"]),
        parent_run_id=task.get("parent_run_id"),
    )
    try:
        outcome = run_audit(request, source=FetchedModelSource(fetched), sinks=(sink,))
    except BadInputError as exc:
        # The static reader names the downloaded file; the registry version says more.
        text = str(exc).replace(str(fetched.model_file), f"{model_uri} ({fetched.model_file.name})")
        raise BadInputError(text) from None
    if outcome.sink_error is not None:
        raise outcome.sink_error
    report = outcome.report
    logged = sink.logged[-1] if sink.logged else None
    return {
        "model": task["model"],
        "version": task["version"],
        "verdict": report.verdict,
        "codes": list(report.codes),
        "findings": [f.to_dict() for f in report.findings],
        "audit_run": None if logged is None else logged.run_id,
        "audit_run_url": None if logged is None else logged.url,
        "data_hash": report.context.get("data_sha256"),
        "error": None,
        "error_kind": None,
        "seconds": round(time.perf_counter() - start, 3),
        "report_dir": None if outcome.folder is None else str(outcome.folder),
        "peak_rss_mb": peak_rss_mb(),
    }


def eval_data_file(task: Mapping[str, Any], download_dir: Path) -> str:
    """The task's eval data file here: ``data`` when this process sees it, else the artifact
    ``data_uri`` downloaded into ``download_dir`` (a Spark executor on another machine than the
    driver, which downloaded it into a folder of its own)."""
    data = str(task["data"])
    uri = task.get("data_uri")
    if not uri or Path(data).is_file():
        return data
    from lossaudit.registry.datafiles import download_eval_data

    return download_eval_data(str(uri), download_dir / "data", str(task["tracking_uri"]))


TaskFn = Callable[[Task], Result]
ResultCallback = Callable[[Task, Result], None]


def run_tasks(
    tasks: Sequence[Task],
    *,
    workers: int,
    on_result: ResultCallback,
    fn: TaskFn = audit_version,
    initializer: Callable[..., None] | None = init_worker,
    initargs: tuple[Any, ...] | None = None,
) -> None:
    """Run ``fn`` on every task and hand each (task, result) to ``on_result`` as it finishes.

    Parameters
    ----------
    tasks : the versions to audit, as plain dicts.
    workers : 1 runs every task in this process, in order (no pool: simple to test and debug);
        N > 1 runs them in N ``spawn`` worker processes, at most one task in flight per worker.
    on_result : called in this process for every task, exactly once, in completion order.
    fn : the task function; a module-level function (it is pickled by reference). It should
        return an error result rather than raise: an exception that escapes it is reported as an
        ``internal`` error of that task.
    initializer, initargs : run once in each worker process; by default :func:`init_worker`
        with :func:`threads_per_worker`. Not run when ``workers`` is 1.
    """
    if workers < 1:
        raise BadInputError(f"--workers must be at least 1, got {workers}")
    if not tasks:
        return
    if workers == 1:
        for task in tasks:
            on_result(task, call_in_process(fn, task))
        return
    if initargs is None:
        initargs = (threads_per_worker(workers),) if initializer is init_worker else ()
    pool_size = min(workers, len(tasks))
    queue: deque[Task] = deque(tasks)
    while queue:
        suspects = _run_pool(queue, pool_size, fn, initializer, initargs, on_result)
        if len(suspects) == 1:
            on_result(suspects[0], crash_result(suspects[0]))
            continue
        # Several versions were in flight when a worker died and the pool cannot say which one
        # killed it: audit each alone, so that only the culprit is reported as crashed.
        for suspect in suspects:
            alone: deque[Task] = deque([suspect])
            if _run_pool(alone, 1, fn, initializer, initargs, on_result):
                on_result(suspect, crash_result(suspect))


def call_in_process(fn: TaskFn, task: Task) -> Result:
    """``fn(task)`` in this process; an exception or a ``sys.exit`` that escapes it is an
    ``internal`` error of the task."""
    try:
        return fn(task)
    except Exception as exc:
        return error_result(task, ERROR_INTERNAL, f"{type(exc).__name__}: {_first_line(exc)}")
    except SystemExit as exc:
        return error_result(task, ERROR_INTERNAL, _exit_reason(exc))


def _exit_reason(exc: SystemExit) -> str:
    return f"the audit called sys.exit({exc.code!r}) before it finished"


def _run_pool(
    queue: deque[Task],
    size: int,
    fn: TaskFn,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    on_result: ResultCallback,
) -> list[Task]:
    """Drain ``queue`` through a fresh pool of ``size`` workers, at most one task in flight per
    worker. Returns the tasks that were in flight when the pool broke (empty when it did not);
    tasks not yet submitted stay in ``queue``."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    in_flight: dict[Future[Result], Task] = {}
    with ProcessPoolExecutor(
        max_workers=size, mp_context=context, initializer=initializer, initargs=initargs
    ) as pool:
        while queue or in_flight:
            while queue and len(in_flight) < size:
                task = queue.popleft()
                in_flight[pool.submit(fn, task)] = task
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken: list[Task] = []
            for future in done:
                task = in_flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken.append(task)
                    continue
                except Exception as exc:  # the task or its result could not be pickled
                    result = error_result(task, ERROR_INTERNAL, f"{type(exc).__name__}: {_first_line(exc)}")
                except SystemExit as exc:  # re-raised here from the worker: not this job's exit
                    result = error_result(task, ERROR_INTERNAL, _exit_reason(exc))
                on_result(task, result)
            if broken:
                # Every future still in flight fails with the same BrokenProcessPool.
                broken.extend(in_flight.values())
                return broken
    return []
