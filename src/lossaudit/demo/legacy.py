"""Reproduce legacy Keras metric resolution for real: tf-keras in TF1 graph mode, in a subprocess.

Keras <= 2.3, tf.keras <= 2.1 and tf-keras with ``tf.compat.v1.disable_eager_execution()`` pick
the function behind ``metrics=['accuracy']`` from the loss (tf_keras/src/engine/
training_utils_v1.py, ``get_metric_function``): with ``binary_crossentropy`` it is
``binary_accuracy``, elementwise over all n*K outputs, whatever the number of classes. That is
the number the seed questions trusted ("binary_crossentropy is more accurate").

Graph mode is process-global and cannot be switched back, so the reproduction runs in a child
process (``python -m lossaudit.demo.legacy``) that trains a small MLP, evaluates it, records what
tf-keras reported, which metric function it built, and the predictions, and writes them as JSON.
The parent audits those numbers with lossaudit's core (Keras family ``legacy``).

tf-keras is optional: it depends on ``tensorflow`` by name, which ``tensorflow-cpu`` provides, so
it is installed with ``pip install --no-deps "tf-keras>=2.20,<2.22"``. Without it,
:func:`load_recorded` returns a run recorded earlier by :mod:`lossaudit.demo.record`, and says
so in ``source``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.core.head import HeadSpec, KerasFamily
from lossaudit.errors import LossauditError

if TYPE_CHECKING:
    import numpy as np

RECORDED_DIR = Path(__file__).parent / "data"
RECORD_FORMAT = 1
DEFAULT_TIMEOUT = 240.0
"""Seconds the child may take: importing TensorFlow alone is 5-10 s on a loaded 2-core machine."""


class LegacyUnavailableError(LossauditError):
    """The live legacy reproduction cannot run here (no tf-keras, or the child process failed)."""


@dataclass(frozen=True)
class LegacySpec:
    """What the child builds: an MLP with ``hidden`` ReLU layers and a Dense head, and how it trains."""

    units: int
    activation: str
    loss: str
    metrics: tuple[str, ...] = ("accuracy",)
    fixed_metrics: tuple[str, ...] = ()
    """Metrics to re-evaluate the same trained model with (the fix), empty for none."""
    hidden: tuple[int, ...] = (32,)
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    learning_rate: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LegacySpec:
        return cls(
            units=int(data["units"]),
            activation=str(data["activation"]),
            loss=str(data["loss"]),
            metrics=tuple(str(m) for m in data.get("metrics", ("accuracy",))),
            fixed_metrics=tuple(str(m) for m in data.get("fixed_metrics", ())),
            hidden=tuple(int(h) for h in data.get("hidden", (32,))),
            epochs=int(data.get("epochs", 5)),
            batch_size=int(data.get("batch_size", 32)),
            seed=int(data.get("seed", 0)),
            learning_rate=float(data.get("learning_rate", 0.01)),
        )


@dataclass(frozen=True)
class LegacyRun:
    """What tf-keras in graph mode reported for a model, and that model's eval-set predictions."""

    spec: LegacySpec
    head: HeadSpec
    """Keras family ``legacy``: graph mode resolves 'accuracy' from the loss."""
    reported: Mapping[str, float]
    """``evaluate`` on the eval set, by metric name (``loss``, ``accuracy``)."""
    history: Mapping[str, tuple[float, ...]]
    built_metrics: tuple[tuple[str, str], ...]
    """(declared name, function/class tf-keras built), e.g. ("accuracy", "BinaryAccuracy")."""
    fixed_reported: Mapping[str, float]
    """``evaluate`` of the same trained model recompiled with ``spec.fixed_metrics``."""
    versions: Mapping[str, str]
    executing_eagerly: bool
    live: bool
    """True when reproduced now in a child process; False for a recorded run."""
    source: str
    seconds: float = 0.0
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)
    y_eval: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "head": self.head.to_dict(),
            "reported": dict(self.reported),
            "history": {k: list(v) for k, v in self.history.items()},
            "built_metrics": [list(p) for p in self.built_metrics],
            "fixed_reported": dict(self.fixed_reported),
            "versions": dict(self.versions),
            "executing_eagerly": self.executing_eagerly,
            "live": self.live,
            "source": self.source,
            "seconds": round(self.seconds, 3),
        }


def unavailable_reason() -> str | None:
    """Why the live reproduction cannot run here, or None when tf-keras is importable."""
    if importlib.util.find_spec("tf_keras") is None:
        return 'tf-keras is not installed (pip install --no-deps "tf-keras>=2.20,<2.22")'
    return None


def run_legacy(
    spec: LegacySpec,
    x_train: Any,
    y_train: Any,
    x_eval: Any,
    y_eval: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> LegacyRun:
    """Train and evaluate ``spec`` with tf-keras in TF1 graph mode in a child process.

    Raises
    ------
    LegacyUnavailableError
        tf-keras is not installed, or the child failed or timed out (the message says which).
    """
    return start_legacy(spec, x_train, y_train, x_eval, y_eval).wait(timeout)


class PendingLegacyRun:
    """A child process reproducing a legacy run; :meth:`wait` collects it.

    Starting the child before other work lets its TensorFlow import and training overlap with
    the parent's: the demo starts it first and collects it last.
    """

    def __init__(self, process: subprocess.Popen[str], workdir: Path, started: float) -> None:
        self._process = process
        self._workdir = workdir
        self._started = started

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> LegacyRun:
        """The run, once the child is done. Raises :class:`LegacyUnavailableError` on failure."""
        out_path = self._workdir / "run.json"
        try:
            remaining = max(1.0, timeout - (time.perf_counter() - self._started))
            try:
                self._process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                raise LegacyUnavailableError(
                    f"the tf-keras graph-mode run took over {timeout:.0f} s"
                ) from None
            if self._process.returncode != 0 or not out_path.exists():
                stderr_path = self._workdir / "stderr.txt"
                stderr = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
                lines = [line for line in stderr.splitlines() if line.strip()]
                last = lines[-1] if lines else f"exit code {self._process.returncode}"
                raise LegacyUnavailableError(f"the tf-keras graph-mode run failed: {last}")
            record = json.loads(out_path.read_text())
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
        run = _run_from_record(record, live=True, source="")
        versions = run.versions
        source = (
            f"reproduced now: tf-keras {versions.get('tf_keras', '?')} on TensorFlow "
            f"{versions.get('tensorflow', '?')} in TF1 graph mode (disable_eager_execution), child process"
        )
        return _with(run, source=source, seconds=time.perf_counter() - self._started)

    def cancel(self) -> None:
        """Stop the child (if still running) and remove its files."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._workdir, ignore_errors=True)


def start_legacy(spec: LegacySpec, x_train: Any, y_train: Any, x_eval: Any, y_eval: Any) -> PendingLegacyRun:
    """Start the graph-mode child on these arrays and return at once.

    Raises
    ------
    LegacyUnavailableError
        tf-keras is not installed.
    """
    import numpy as np

    reason = unavailable_reason()
    if reason is not None:
        raise LegacyUnavailableError(reason)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="lossaudit-legacy-"))
    np.savez(
        workdir / "data.npz",
        x_train=np.asarray(x_train, dtype=np.float32),
        y_train=np.asarray(y_train, dtype=np.float32),
        x_eval=np.asarray(x_eval, dtype=np.float32),
        y_eval=np.asarray(y_eval, dtype=np.float32),
    )
    (workdir / "spec.json").write_text(json.dumps(spec.to_dict()))
    command = [
        sys.executable,
        "-m",
        "lossaudit.demo.legacy",
        "--spec",
        str(workdir / "spec.json"),
        "--data",
        str(workdir / "data.npz"),
        "--out",
        str(workdir / "run.json"),
    ]
    env = dict(os.environ)
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", CUDA_VISIBLE_DEVICES="-1")
    # stderr goes to a file, not a pipe: a child that writes more than a pipe holds would block.
    with (workdir / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=env)
    return PendingLegacyRun(process, workdir, started)


def _with(run: LegacyRun, **changes: Any) -> LegacyRun:
    from dataclasses import replace

    return replace(run, **changes)


def recorded_path(name: str) -> Path:
    return RECORDED_DIR / f"{name}.json"


def load_recorded(name: str) -> LegacyRun:
    """A legacy run recorded earlier with ``python -m lossaudit.demo.record``.

    Raises
    ------
    LegacyUnavailableError
        No such recording ships with this installation.
    """
    path = recorded_path(name)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LegacyUnavailableError(f"no recorded legacy run {name!r}: {exc}") from None
    versions = record.get("versions", {})
    source = (
        f"recorded on {record.get('recorded_at', '?')} by `{record.get('command', '?')}` with tf-keras "
        f"{versions.get('tf_keras', '?')} on TensorFlow {versions.get('tensorflow', '?')} in TF1 graph "
        f"mode (file {path.name} in the lossaudit package); not reproduced now"
    )
    return _run_from_record(record, live=False, source=source)


def _run_from_record(record: Mapping[str, Any], *, live: bool, source: str) -> LegacyRun:
    import numpy as np

    spec = LegacySpec.from_dict(record["spec"])
    head = HeadSpec.from_mapping(record["head"], source="tf-keras graph mode")
    return LegacyRun(
        spec=spec,
        head=head.with_changes(keras_family=KerasFamily.LEGACY),
        reported={k: float(v) for k, v in record["reported"].items()},
        history={k: tuple(float(x) for x in v) for k, v in record.get("history", {}).items()},
        built_metrics=tuple((str(a), str(b)) for a, b in record.get("built_metrics", ())),
        fixed_reported={k: float(v) for k, v in record.get("fixed_reported", {}).items()},
        versions={str(k): str(v) for k, v in record.get("versions", {}).items()},
        executing_eagerly=bool(record.get("executing_eagerly", False)),
        live=live,
        source=source,
        seconds=float(record.get("seconds", 0.0)),
        predictions=np.asarray(record["predictions"], dtype=np.float64),
        y_eval=np.asarray(record["y_eval"], dtype=np.float64),
    )


# --- the child process -----------------------------------------------------------------------


def _train_in_graph_mode(spec: LegacySpec, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Runs in the child only: switches this process to TF1 graph mode for good."""
    import numpy as np
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.compat.v1.disable_eager_execution()
    import tf_keras

    from lossaudit.core.head import normalise_metric_name
    from lossaudit.keras.live import head_from_model, metric_class_name

    started = time.perf_counter()
    tf_keras.utils.set_random_seed(spec.seed)
    n_features = int(data["x_train"].shape[1])
    layers: list[Any] = [tf_keras.Input((n_features,))]
    layers += [tf_keras.layers.Dense(width, activation="relu") for width in spec.hidden]
    layers.append(tf_keras.layers.Dense(spec.units, activation=spec.activation))
    model = tf_keras.Sequential(layers)
    # Graph mode needs the v1 optimizers: the new ones have no get_updates.
    optimizer = tf_keras.optimizers.legacy.Adam(learning_rate=spec.learning_rate)
    model.compile(optimizer=optimizer, loss=spec.loss, metrics=list(spec.metrics))
    fitted = model.fit(
        data["x_train"],
        data["y_train"],
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        shuffle=True,
        verbose=0,
    )
    values = model.evaluate(data["x_eval"], data["y_eval"], batch_size=spec.batch_size, verbose=0)
    reported = dict(zip(model.metrics_names, (float(v) for v in np.atleast_1d(values)), strict=True))
    # training_v1 keeps its metric objects in model.metrics (MeanMetricWrapper around the function
    # get_metric_function chose); the live reader's containers do not exist in graph mode.
    built = [(normalise_metric_name(m.name), metric_class_name(m)) for m in model.metrics]
    predictions = model.predict(data["x_eval"], batch_size=256, verbose=0)
    head = head_from_model(model, source="tf-keras graph mode").with_changes(
        metrics=tuple(spec.metrics), keras_family=KerasFamily.LEGACY
    )
    fixed_reported: dict[str, float] = {}
    if spec.fixed_metrics:
        model.compile(optimizer=optimizer, loss=spec.loss, metrics=list(spec.fixed_metrics))
        fixed = model.evaluate(data["x_eval"], data["y_eval"], batch_size=spec.batch_size, verbose=0)
        fixed_reported = dict(zip(model.metrics_names, (float(v) for v in np.atleast_1d(fixed)), strict=True))
    return {
        "format": RECORD_FORMAT,
        "spec": spec.to_dict(),
        "head": {
            "units": head.units,
            "activation_chain": list(head.activation_chain),
            "loss": head.loss.name if head.loss else None,
            "from_logits": head.from_logits,
            "metrics": list(head.metrics),
            "keras_family": KerasFamily.LEGACY.value,
        },
        "reported": reported,
        "history": {k: [float(x) for x in v] for k, v in fitted.history.items()},
        "built_metrics": [list(p) for p in built],
        "fixed_reported": fixed_reported,
        "versions": {"tf_keras": str(tf_keras.__version__), "tensorflow": str(tf.__version__)},
        "executing_eagerly": bool(tf.executing_eagerly()),
        "seconds": time.perf_counter() - started,
        "predictions": [[round(float(p), 7) for p in row] for row in np.asarray(predictions)],
        "y_eval": np.asarray(data["y_eval"]).tolist(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point: ``python -m lossaudit.demo.legacy --spec S --data D --out O``.

    Recording a demo scenario's run is :mod:`lossaudit.demo.record`.
    """
    parser = argparse.ArgumentParser(prog="python -m lossaudit.demo.legacy", description=__doc__)
    parser.add_argument("--spec", type=Path, help="LegacySpec as JSON")
    parser.add_argument("--data", type=Path, help=".npz with x_train, y_train, x_eval, y_eval")
    parser.add_argument("--out", type=Path, help="where to write the run as JSON")
    args = parser.parse_args(argv)
    import numpy as np

    if not (args.spec and args.data and args.out):
        parser.error("give --spec, --data and --out")
    spec = LegacySpec.from_dict(json.loads(args.spec.read_text()))
    with np.load(args.data) as npz:
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_eval", "y_eval")}
    record = _train_in_graph_mode(spec, arrays)
    args.out.write_text(json.dumps(record, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
