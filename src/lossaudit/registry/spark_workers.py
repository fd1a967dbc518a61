"""Audit registry versions on Spark (``lossaudit registry --engine spark``): one Spark job of one
task per version, so the versions are audited at once on the cluster's executors.

:class:`SparkTasks` has :func:`~lossaudit.registry.workers.run_tasks`'s contract: every task gets
exactly one ``on_result`` call, in this process, in completion order, as each version finishes.
The driver submits the jobs from a pool of threads, as many as versions may run at once
(``--workers`` when above 1, else the Spark context's default parallelism: its cores), each job
``sc.parallelize([task], 1).map(...).collect()`` under the job's group, described by the version
(``lossaudit registry: digits v3`` in the Spark UI). The task function is
:func:`~lossaudit.registry.workers.audit_version` as in worker processes: plain data in and out,
never raising.

On the executor, the first task of each Python worker runs :func:`~lossaudit.registry.workers.
init_worker` once (TensorFlow imported, its thread pools sized to the cores Spark gives the task,
``spark.task.cpus``); Spark reuses Python workers, so later versions find TensorFlow loaded. A
Python worker that dies (a native crash, the OOM killer, a lost executor) fails its job alone
(after Spark's own retries, ``spark.task.maxFailures``): that version is reported as ``crash``
with Spark's reason, and the others go on.

Where things are: the driver resolves each version's eval data; data it downloaded from an
artifact URI travels as that URI too, and an executor that cannot see the driver's download
fetches it itself. The model is fetched by the executor from the tracking server (``models:/``),
and the audit run is logged from there: on a cluster the tracking server must be reachable from
the executors (a SQLite store works in local mode only). On a master that is not local, report
folders are not written on the executors' disks: each version's report is its audit run's
artifacts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.registry.workers import (
    ERROR_CRASH,
    ERROR_INTERNAL,
    Result,
    ResultCallback,
    Task,
    TaskFn,
    audit_version,
    call_in_process,
    error_result,
    init_worker,
)

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

SPARK_CRASH_REASON = (
    "the Spark task auditing this version failed (its Python worker or executor died: native crash "
    "or out of memory)"
)
_LOST_TASK = re.compile(
    r"most recent failure: Lost task [^()]*\(TID \d+\)(?: \([^()]*\))?: (?:[\w.$]+(?:Exception|Error): )?(.*)"
)

_STARTED: set[str] = set()
"""In an executor's Python worker: the initializers that ran in it (:func:`init_worker`, or a
test's), each once."""


def task_threads() -> int:
    """The cores Spark gives the running task (``spark.task.cpus``): TensorFlow's threads."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return max(1, int(context.cpus())) if context is not None else 1


def run_on_executor(fn: TaskFn, initializer: Callable[[int], None] | None, task: Task) -> Result:
    """What each Spark task runs: the initializer once per Python worker, then ``fn(task)``;
    never raises (an exception is an ``internal`` error of the version)."""
    if initializer is not None:
        name = f"{getattr(initializer, '__module__', '')}.{getattr(initializer, '__qualname__', initializer)}"
        if name not in _STARTED:
            try:
                initializer(task_threads())
            except Exception as exc:
                reason = (
                    f"the executor's Python worker could not start the audit: {type(exc).__name__}: {exc}"
                )
                return error_result(task, ERROR_INTERNAL, reason.splitlines()[0][:300])
            _STARTED.add(name)
    return call_in_process(fn, task)


def spark_failure_reason(exc: BaseException, limit: int = 300) -> str:
    """Why a version's Spark job failed, in one line: the lost task's reason when Spark names it
    (``Python worker exited unexpectedly (crashed)``, ``ExecutorLostFailure (...)``), else the
    first line that says something."""
    text = str(exc)
    found = _LOST_TASK.search(text)
    if found is not None:
        reason = found.group(1).split(". Consider setting", 1)[0].strip()
    else:
        lines = [line.strip().lstrip(": ").strip() for line in text.splitlines()]
        useful = [line for line in lines if line and not line.startswith("An error occurred while calling")]
        reason = useful[0] if useful else type(exc).__name__
    return reason[:limit]


def spark_failure_result(task: Task, exc: BaseException) -> Result:
    """The result of a version whose Spark job failed: ``crash`` when Spark failed it (its Python
    worker or executor died), ``internal`` for anything else (the task could not be sent)."""
    if getattr(exc, "java_exception", None) is not None:  # py4j's Py4JJavaError: Spark failed the job
        return error_result(task, ERROR_CRASH, f"{SPARK_CRASH_REASON}: {spark_failure_reason(exc)}")
    return error_result(task, ERROR_INTERNAL, f"{type(exc).__name__}: {spark_failure_reason(exc)}")


def version_label(task: Task) -> str:
    return f"{task['model']} v{task['version']}"


def _run_job(
    context: SparkContext, group: str, task: Task, fn: TaskFn, initializer: Callable[[int], None] | None
) -> Result:
    """One version as one Spark job of one task (in a driver thread)."""
    context.setJobGroup(group, f"lossaudit registry: {version_label(task)}", interruptOnCancel=True)
    results = context.parallelize([task], 1).map(partial(run_on_executor, fn, initializer)).collect()
    if len(results) != 1 or not isinstance(results[0], dict):
        raise RuntimeError(f"the Spark job returned {len(results)} result(s), not one result dict")
    result: Result = results[0]
    return result


def run_spark_tasks(
    context: SparkContext,
    tasks: Sequence[Task],
    *,
    slots: int,
    on_result: ResultCallback,
    fn: TaskFn = audit_version,
    initializer: Callable[[int], None] | None = init_worker,
) -> None:
    """Run ``fn`` on every task as its own Spark job, at most ``slots`` at once, and hand each
    (task, result) to ``on_result`` in this thread as it finishes.

    ``fn`` and ``initializer`` are pickled to the executors (by reference for module-level
    functions: the executors must import them). A job that fails gives its task a ``crash``
    result (:func:`spark_failure_result`). An exception in this thread (an interrupt, or one
    ``on_result`` raised) cancels the jobs still running before it propagates.
    """
    if not tasks:
        return
    group = f"lossaudit-registry-{uuid.uuid4().hex[:12]}"
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(slots, len(tasks))), thread_name_prefix="lossaudit-spark"
    )
    pending: dict[Future[Result], Task] = {
        pool.submit(_run_job, context, group, task, fn, initializer): task for task in tasks
    }
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    result = spark_failure_result(task, exc)
                on_result(task, result)
    except BaseException:
        for future in pending:
            future.cancel()
        context.cancelJobGroup(group)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class SparkTasks:
    """The Spark engine of a registry job: starts Spark on first use (a job that skips every
    version never starts it) and runs the tasks with :func:`run_spark_tasks`."""

    def __init__(self, master: str | None, workers: int = 1) -> None:
        self.master = master
        self.workers = workers
        self._session: SparkSession | None = None

    def start(self) -> SparkSession:
        """The session (:func:`lossaudit.spark.session.spark_session`: an active one, else a new
        one on the master). Raises BadInputError (one line) when Spark cannot start."""
        if self._session is None:
            from lossaudit.spark.session import spark_session

            self._session = spark_session(self.master)
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None

    def slots(self) -> int:
        """Versions audited at once: ``workers`` when above 1, else the default parallelism."""
        if self.workers > 1:
            return self.workers
        return max(1, int(self.start().sparkContext.defaultParallelism))

    def describe(self) -> dict[str, Any]:
        """``master`` (the session's, or the one it would start on) and ``spark_version`` (None
        when Spark was not started)."""
        from lossaudit.spark.session import resolve_master

        if self._session is None:
            return {"master": resolve_master(self.master), "spark_version": None}
        return {"master": str(self._session.sparkContext.master), "spark_version": str(self._session.version)}

    def run(
        self,
        tasks: Sequence[Task],
        *,
        on_result: ResultCallback,
        fn: TaskFn = audit_version,
        initializer: Callable[[int], None] | None = init_worker,
    ) -> None:
        """Audit ``tasks`` on the executors (see :func:`run_spark_tasks`)."""
        from lossaudit.spark.session import is_local

        session = self.start()
        context = session.sparkContext
        if not is_local(str(context.master)):
            # The executors' disks are not the driver's: the reports are the audit runs' artifacts.
            tasks = [{**task, "out_dir": None} for task in tasks]
        else:
            # The Python workers need not share the driver's working folder.
            tasks = [
                {
                    **task,
                    "out_dir": None if task.get("out_dir") is None else str(Path(task["out_dir"]).resolve()),
                }
                for task in tasks
            ]
        run_spark_tasks(
            context, tasks, slots=self.slots(), on_result=on_result, fn=fn, initializer=initializer
        )
