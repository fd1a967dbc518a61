"""Live introspection of a loaded Keras model: its head, compiled loss, declared and built metrics.

Works on Keras 3 models and, when ``tf_keras`` is installed, on tf-keras models: both are read by
duck typing (``layers``, ``loss``, the compiled metric containers), never by importing the other
family. Loading a model file lives here too, because it is where safety is decided: a Lambda
layer is Python code in the file and is refused unless the caller says ``unsafe``.

Where the metric objects are (read from the libraries' sources):

* Keras 3 -- ``model._compile_metrics`` is a ``CompileMetrics`` (keras/src/trainers/
  compile_utils.py); its ``metrics`` property is empty until the first batch of fit/evaluate
  builds them from the label and output shapes; ``_user_metrics`` holds what compile was given.
* tf-keras -- ``model.compiled_metrics`` is a ``MetricsContainer`` (tf_keras/src/engine/
  compile_utils.py) with the same two roles (``metrics`` once built, ``_user_metrics``); its
  'accuracy' is a ``MeanMetricWrapper`` around ``binary_accuracy``/``categorical_accuracy``/...

Why one module of about 680 lines: reading a live model's head (up to :func:`head_from_model`) and
loading a saved file (from :func:`refuse_lambda` on) both rest on the per-version facts above, and
a split would either separate those facts from one half or repeat them; callers import either
half from here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossaudit.core.head import HeadSpec, KerasFamily, LossSpec, normalise_activation, normalise_metric_name
from lossaudit.core.names import ACTIVATIONS, REGISTERED_SEPARATOR, qualified_name
from lossaudit.errors import BadInputError, RefusedError

if TYPE_CHECKING:
    from lossaudit.keras.static import ModelSnapshot, StaticModel

# Layers whose only job is an activation, by class name (Keras 3 and tf-keras share the names).
_ACTIVATION_LAYERS = {
    "Softmax": "softmax",
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
    "PReLU": "prelu",
}
# Loss arguments that have no meaning in Keras 3 and make a tf-keras loss config fail to build.
_LEGACY_LOSS_ARGS = frozenset({"reduction", "fn"})

UNSAFE_WARNING = (
    "lossaudit: WARNING: --unsafe: deserializing Lambda layer(s) {layers} in {path} runs Python "
    "code stored in the model file. Do this only for files you trust."
)
"""Printed on stderr, before the load, whenever a load turns Keras's safe mode off: with
``--unsafe`` and Lambda layers (or serialised lambdas) found by the static read of the very bytes
being loaded. ``--unsafe`` on a model with none leaves safe mode on and prints nothing (a note in
the report says so)."""
SAFE_MODE_KEPT_NOTE = (
    "--unsafe was given, but the static read found no Lambda layer or serialised lambda: the model "
    "was loaded with Keras's safe mode on"
)


def model_family(model: Any) -> KerasFamily:
    """``tf_keras`` for a tf-keras model, else ``keras3`` (decided by the model class's module)."""
    module = type(model).__module__ or ""
    return KerasFamily.TF_KERAS if module.split(".")[0] == "tf_keras" else KerasFamily.KERAS3


def keras_version(model: Any) -> str:
    """Version of the Keras that built ``model`` (``keras`` or ``tf_keras``)."""
    if model_family(model) is KerasFamily.TF_KERAS:
        import tf_keras

        return str(tf_keras.__version__)
    import keras

    return str(keras.__version__)


def camel_case(snake: str) -> str:
    """``"top_k_categorical_accuracy"`` -> ``"TopKCategoricalAccuracy"`` (Keras class naming)."""
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


def _callable_name(fn: Any) -> str:
    inner = getattr(fn, "func", None)  # functools.partial
    if inner is not None and not hasattr(fn, "__name__"):
        fn = inner
    return str(getattr(fn, "__name__", type(fn).__name__))


def _registered_name(obj: Any) -> str | None:
    """``package>name`` when ``obj`` (a function or class) is registered with Keras 3 or tf-keras.

    Only a library already imported is asked: an object registered with one was imported with it.
    """
    for library in ("keras", "tf_keras"):
        module = sys.modules.get(library)
        saving = getattr(module, "saving", None)
        get_registered_name = getattr(saving, "get_registered_name", None)
        if not callable(get_registered_name):
            continue
        try:
            name = get_registered_name(obj)
        except Exception:  # a foreign object the registry cannot name
            continue
        if isinstance(name, str) and REGISTERED_SEPARATOR in name:
            return name
    return None


def object_name(obj: Any) -> str:
    """The name of a function or object as the name normalisers read it (lossaudit.core.names).

    TensorFlow and Keras functions keep their own name (``tf.nn.softmax`` is ``softmax_v2``, which
    normalises to ``softmax``); a custom function or class keeps its registered ``package>name``
    or is qualified by its module (``__main__.my_loss``), so it is never taken for a built-in.
    """
    inner = getattr(obj, "func", None)  # functools.partial
    if inner is not None and not hasattr(obj, "__name__"):
        obj = inner
    target = obj if hasattr(obj, "__name__") else type(obj)
    name = str(getattr(target, "__name__", type(obj).__name__))
    module = getattr(target, "__module__", None)
    qualified = qualified_name(name, module if isinstance(module, str) else None)
    if qualified != name:
        return _registered_name(target) or qualified
    return name


def flat_layers(model: Any) -> list[Any]:
    """Every layer in order, with nested models (a Sequential inside a functional model) expanded."""
    out: list[Any] = []
    for layer in getattr(model, "layers", None) or ():
        nested = getattr(layer, "layers", None)
        if isinstance(nested, list) and nested:
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def _layer_activation(layer: Any) -> str | None:
    """The activation a layer applies, or None for layers that apply none (Dropout, Reshape...)."""
    name = type(layer).__name__
    if name in _ACTIVATION_LAYERS:
        return _ACTIVATION_LAYERS[name]
    if name == "Activation":
        return normalise_activation(object_name(layer.activation))
    if name == "TFOpLambda":
        # tf-keras records a raw TF call on a Keras tensor (tf.nn.softmax(logits)) as this layer;
        # ``symbol`` names the TF function ("nn.softmax").
        symbol = getattr(layer, "symbol", None)
        if isinstance(symbol, str) and symbol.strip():
            activation = normalise_activation(symbol.strip().rsplit(".", 1)[-1])
            return activation if activation in ACTIVATIONS else None
    return None


def _output_units(model: Any) -> int | None:
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    if len(outputs) > 1:
        raise BadInputError(f"model has {len(outputs)} outputs; lossaudit audits single-output classifiers")
    shape = tuple(outputs[0].shape)
    if not shape:
        return None
    last = shape[-1] if len(shape) > 1 else 1
    return int(last) if last is not None else None


def activation_chain(model: Any) -> tuple[int | None, tuple[str, ...]]:
    """(units of the last Dense, activations from it to the output) of a model."""
    layers = flat_layers(model)
    last_dense = None
    for index in range(len(layers) - 1, -1, -1):
        units = getattr(layers[index], "units", None)
        if isinstance(units, int) and not isinstance(units, bool):
            last_dense = index
            break
    chain: list[str] = []
    start = 0
    units_found: int | None = None
    if last_dense is not None:
        dense = layers[last_dense]
        units_found = int(dense.units)
        act = getattr(dense, "activation", None)
        chain.append(normalise_activation(None if act is None else object_name(act)))
        start = last_dense + 1
    for layer in layers[start:]:
        act_name = _layer_activation(layer)
        if act_name is not None:
            chain.append(act_name)
    return units_found, tuple(chain) or ("linear",)


def _flatten_compile_arg(value: Any) -> list[Any]:
    """Leaves of a compile argument nested per output; a serialized object is one leaf."""
    if value is None:
        return []
    if isinstance(value, dict) and "class_name" not in value:
        return [v for item in value.values() for v in _flatten_compile_arg(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _flatten_compile_arg(item)]
    return [value]


def loss_spec(loss: Any) -> LossSpec | None:
    """The :class:`LossSpec` of a compiled loss: a name, a loss function or a Loss object."""
    items = _flatten_compile_arg(loss)
    if not items:
        return None
    if len(items) > 1:
        raise BadInputError(f"model has {len(items)} losses; lossaudit audits single-output classifiers")
    obj = items[0]
    if isinstance(obj, str):
        return LossSpec(obj)
    config: dict[str, Any] = {}
    get_config = getattr(obj, "get_config", None)
    if callable(get_config):
        try:
            config = dict(get_config())
        except (NotImplementedError, TypeError, ValueError):
            config = {}
    config.update(getattr(obj, "_fn_kwargs", None) or {})
    config.update(getattr(obj, "keywords", None) or {})  # functools.partial(loss_fn, from_logits=...)
    wrapped = getattr(obj, "fn", None)
    if wrapped is not None and type(obj).__name__ == "LossFunctionWrapper":
        name = object_name(wrapped)
    elif hasattr(obj, "call") and hasattr(obj, "get_config"):
        name = object_name(type(obj))
    else:
        name = object_name(obj)
    return LossSpec(
        name,
        from_logits=bool(config.get("from_logits", False)),
        label_smoothing=float(config.get("label_smoothing", 0.0) or 0.0),
    )


def _metric_container(model: Any) -> Any:
    if model_family(model) is KerasFamily.TF_KERAS:
        return getattr(model, "compiled_metrics", None)
    return getattr(model, "_compile_metrics", None)


def _metric_name(metric: Any) -> str:
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "name", None)
    if isinstance(name, str) and name:
        # A custom metric class is named by its class, as the static read names it.
        custom = object_name(type(metric))
        return custom if custom != type(metric).__name__ else name
    return object_name(metric)


def declared_metrics(model: Any) -> tuple[str, ...]:
    """The metric names compile was given (``'accuracy'``, ``'binary_accuracy'``, ...)."""
    container = _metric_container(model)
    if container is None:
        return ()
    user = _flatten_compile_arg(getattr(container, "_user_metrics", None))
    user += _flatten_compile_arg(getattr(container, "_user_weighted_metrics", None))
    return tuple(dict.fromkeys(_metric_name(m) for m in user if m is not None))


def metric_class_name(metric: Any) -> str:
    """The class a built metric really is; a ``MeanMetricWrapper`` is named by its function."""
    cls = type(metric).__name__
    if cls == "MeanMetricWrapper":
        fn = getattr(metric, "_fn", None)
        if fn is not None:
            return camel_case(_callable_name(fn))
    return cls


def built_metric_classes(model: Any) -> tuple[tuple[str, str], ...]:
    """(declared name, Keras class it built) for each compiled metric, after one fit/evaluate batch.

    Empty when the metrics are not built yet (no evaluate ran, or it failed before the metrics).
    The declared name is normalised the way :class:`HeadSpec` normalises ``metrics``, so the pairs
    line up with the rules' predictions (rule LA505).
    """
    container = _metric_container(model)
    if container is None:
        return ()
    try:
        built = list(container.metrics)
    except (AttributeError, TypeError, ValueError):
        return ()
    pairs = ((normalise_metric_name(_metric_name(m)), metric_class_name(m)) for m in built if m is not None)
    return tuple(dict.fromkeys(pairs))


def head_from_model(model: Any, *, source: str = "live model") -> HeadSpec:
    """The :class:`HeadSpec` of a live model: units, activations to the output, loss, metrics.

    Raises
    ------
    BadInputError
        For models with several outputs or losses, or no way to tell the output width.
    """
    dense_units, chain = activation_chain(model)
    units = _output_units(model) or dense_units
    if units is None:
        raise BadInputError("cannot tell the model's output width: no output shape and no Dense layer")
    return HeadSpec(
        units=units,
        activation_chain=chain,
        loss=loss_spec(getattr(model, "loss", None)),
        metrics=declared_metrics(model),
        keras_family=model_family(model),
        source=source,
    )


# --- loading -----------------------------------------------------------------------------------


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:limit]


def _h5_attributes(path: Path, shown: Path | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """(``keras_version``, ``training_config``) of a legacy HDF5 model file (``shown`` names it)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            attrs = dict(handle.attrs)
    except OSError as exc:
        raise BadInputError(
            f"cannot load model {shown or path}: not a readable HDF5 file ({_first_line(exc)})"
        ) from None

    def text(value: Any) -> str | None:
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    version = text(attrs.get("keras_version"))
    raw_config = text(attrs.get("training_config"))
    config = json.loads(raw_config) if raw_config else None
    return version, config if isinstance(config, dict) else None


def _filtered_kwargs(cls: Any, config: dict[str, Any]) -> dict[str, Any]:
    import inspect

    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {k: v for k, v in config.items() if k not in _LEGACY_LOSS_ARGS and (takes_any or k in params)}


def keras3_loss(identifier: Any) -> Any:
    """A Keras 3 loss from a training_config entry written by tf-keras or Keras 2.

    Strings pass through. A ``{"class_name", "config"}`` mapping is rebuilt from the Keras 3 class
    of that name, keeping only the arguments it takes: tf-keras configs carry ``reduction='auto'``
    and ``fn``, which Keras 3 refuses (the reason ``load_model(compile=True)`` fails on them).
    """
    import keras

    if isinstance(identifier, str) or identifier is None:
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = str(identifier["class_name"])
        config = dict(identifier.get("config") or {})
        cls = getattr(keras.losses, name, None)
        if isinstance(cls, type) and name != "LossFunctionWrapper":
            return cls(**_filtered_kwargs(cls, config))
        fn_name = config.get("fn") or config.get("name")
        if isinstance(fn_name, str):
            return fn_name
    raise BadInputError(f"cannot rebuild the compiled loss {identifier!r} for Keras 3")


def keras3_metrics(identifier: Any) -> list[Any]:
    """Keras 3 metrics from a training_config ``metrics`` entry (nested per output in tf-keras).

    A tf-keras ``MeanMetricWrapper`` config records the function its 'accuracy' resolved to when
    the model was trained (``categorical_accuracy``...); it is rebuilt around that same function and
    keeps its name, so the built class is the one tf-keras built, not one Keras 3 picks again.
    """
    import keras

    metrics: list[Any] = []
    for item in _flatten_compile_arg(identifier):
        if isinstance(item, str):
            metrics.append(item)
            continue
        if not isinstance(item, dict) or "class_name" not in item:
            continue
        config = dict(item.get("config") or {})
        name = str(item["class_name"])
        fn_name = config.get("fn")
        if isinstance(fn_name, str):
            # Not keras.metrics.get(fn_name): for 'categorical_accuracy' it returns a stateful
            # CategoricalAccuracy instance, which a MeanMetricWrapper would average as a function.
            metric_name = str(config.get("name", fn_name))
            metric_class = getattr(keras.metrics, camel_case(fn_name), None)
            fn = getattr(keras.metrics, fn_name, None)
            if isinstance(metric_class, type):
                metrics.append(metric_class(name=metric_name))
            elif callable(fn) and not isinstance(fn, type):
                metrics.append(keras.metrics.MeanMetricWrapper(fn, name=metric_name))
            continue
        cls = getattr(keras.metrics, name, None)
        if isinstance(cls, type):
            metrics.append(cls(**_filtered_kwargs(cls, config)))
    return metrics


def _recompile_from_training_config(model: Any, config: dict[str, Any] | None) -> None:
    """Compile a Keras 3 model with the loss and metrics a legacy HDF5 file recorded.

    Evaluate never steps the optimizer, so Keras 3's default optimizer stands in for the file's.
    """
    if not config or config.get("loss") is None:
        return
    model.compile(loss=keras3_loss(config["loss"]), metrics=keras3_metrics(config.get("metrics")) or None)


def refuse_lambda(path: str | Path, lambda_layers: Sequence[str], unsafe: bool) -> None:
    """Stop before deserializing code unless ``unsafe``; then warn loudly on stderr."""
    if not lambda_layers:
        return
    names = ", ".join(lambda_layers)
    if not unsafe:
        raise RefusedError(
            f"model has Lambda layer(s) {names}; refusing to deserialize code: "
            "pass --unsafe to load it anyway"
        )
    print(UNSAFE_WARNING.format(layers=names, path=path), file=sys.stderr, flush=True)


class ModelLoadError(BadInputError):
    """No Keras here could load the model file: Keras 3 failed and, for a file tf-keras or Keras 2
    wrote, tf_keras failed too or is not installed.

    The message is one line naming the file and why each loader failed. The file's static read
    still holds, so an audit can go on without the live model. ``keras3_error`` and
    ``tf_keras_error`` hold each loader's own line (``tf_keras_error`` is None when tf_keras was
    not tried: a Keras 3 file, a file the static reader cannot read, or tf_keras not installed).
    """

    def __init__(
        self, path: str | Path, keras3_error: str, tf_keras_error: str | None = None, *, hint: str = ""
    ) -> None:
        self.path = str(path)
        self.keras3_error = keras3_error
        self.tf_keras_error = tf_keras_error
        if tf_keras_error is None:
            message = f"cannot load model {path}: {keras3_error}"
        else:
            message = f"cannot load model {path}: Keras 3: {keras3_error}; tf_keras: {tf_keras_error}"
        super().__init__(f"{message} ({hint})" if hint else message)


def load_model_file(
    path: str | Path,
    *,
    unsafe: bool = False,
    lambda_layers: Iterable[str] | None = None,
    static: StaticModel | None = None,
    on_note: Callable[[str], None] | None = None,
    snapshot: ModelSnapshot | None = None,
) -> Any:
    """Load a ``.keras`` or ``.h5`` model, refusing Lambda layers unless ``unsafe``.

    One model, one reading: Keras loads a private copy of the file
    (:func:`lossaudit.keras.static.snapshot_model_file`, named after its content, so a polyglot
    or a suffix that disagrees with the content is refused before anything loads), and the Lambda
    decision comes from a static read of that same copy. Given ``snapshot`` (the copy the caller's
    static read came from), its sha256 is checked again first; otherwise the copy is made here
    and removed after the load.

    Keras 3 loads it first. When Keras 3 cannot, and the static read says tf-keras or Keras 2
    wrote the file (or cannot tell who did), tf_keras loads it where it is installed: a tf-keras
    model whose head is a ``TFOpLambda`` (``tf.nn.softmax(logits)``) is one Keras 3 cannot rebuild.
    tf_keras runs in safe mode too: a Lambda's code runs only with ``unsafe``.

    Parameters
    ----------
    path : path to the model file (named in messages).
    unsafe : load Lambda layers (``safe_mode=False``) after a loud warning on stderr. Safe mode is
        turned off only when the static read of the bytes being loaded finds Lambda layers or
        serialised lambdas; otherwise it stays on (and ``on_note`` hears so).
    lambda_layers : names of Lambda layers found by the caller's static read. Without ``unsafe``
        they are trusted (Keras's safe mode stops anything they missed); with ``unsafe`` the copy
        is read again and both lists count.
    static : the caller's static read. Unless it carries the copy's sha256, the copy is read
        again and must say the same (format, head, Lambda layers, Keras version), else the file
        changed between the two reads and is not loaded.
    on_note : receives one line about how the model was loaded (recompiled from training_config,
        loaded with tf_keras and why, safe mode kept).
    snapshot : the private copy the caller read ``static`` from.

    Raises
    ------
    RefusedError
        For a Lambda layer without ``unsafe``.
    BadInputError
        For a file the static read refuses (polyglot, suffix and content disagree, unreadable),
        or one that changed after its static read.
    ModelLoadError
        (a :class:`BadInputError`) when neither loader could load the file: one line, naming the
        file and each loader's error.
    """
    p = Path(path)
    if snapshot is None:
        from lossaudit.keras.static import snapshot_model_file

        with snapshot_model_file(p) as own:
            return load_model_file(
                p, unsafe=unsafe, lambda_layers=lambda_layers, static=static, on_note=on_note, snapshot=own
            )
    checked = checked_static(p, snapshot, static, lambda_layers=lambda_layers, unsafe=unsafe)
    found = tuple(dict.fromkeys([*(checked.lambda_layers if checked else ()), *(lambda_layers or ())]))
    refuse_lambda(p, found, unsafe)  # the warning, before any load
    safe_mode = not (unsafe and found)
    if unsafe and not found and on_note is not None:
        on_note(SAFE_MODE_KEPT_NOTE)
    src = snapshot.path

    def line(exc: BaseException) -> str:
        return load_error_line(exc).replace(str(src), str(p))

    try:
        return _load_with_keras3(src, p, safe_mode=safe_mode, on_note=on_note)
    except BadInputError as exc:
        keras3_error = str(exc).replace(str(src), str(p))
        if keras3_error.startswith(f"cannot load model {p}: "):
            keras3_error = keras3_error[len(f"cannot load model {p}: ") :]
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError... on bad files
        keras3_error = line(exc)
    writer = _tf_keras_writer(snapshot, checked)
    if writer is None:
        raise ModelLoadError(p, keras3_error) from None
    import importlib.util

    if importlib.util.find_spec("tf_keras") is None:
        raise ModelLoadError(
            p,
            keras3_error,
            hint=f"it was written by Keras {writer}: install tf-keras to load it with tf_keras",
        ) from None
    try:
        model, compile_error = _load_with_tf_keras(src, safe_mode=safe_mode)
    except Exception as exc:  # tf-keras raises as many types as Keras 3
        raise ModelLoadError(p, keras3_error, line(exc)) from None
    if on_note is not None:
        import tf_keras

        note = (
            f"{p.name} was saved by Keras {writer} and Keras 3 cannot load it ({keras3_error}): "
            f"loaded with tf_keras {tf_keras.__version__}"
        )
        if compile_error is not None:
            note += f" without compiling it (compiling failed: {compile_error.replace(str(src), str(p))})"
        on_note(note)
    return model


def checked_static(
    path: str | Path,
    snapshot: ModelSnapshot,
    static: StaticModel | None,
    *,
    lambda_layers: Iterable[str] | None = None,
    unsafe: bool = False,
) -> StaticModel | None:
    """The static read that governs loading ``snapshot``: the caller's when its sha256 is the
    copy's, else the copy read again (and compared with the caller's); None only when the caller
    gave just Lambda names without ``unsafe`` (Keras's safe mode stands behind them).

    Raises
    ------
    BadInputError
        When the copy no longer hashes to what was checked, or reads as another model than the
        caller's static read said (the file changed between the two reads).
    """
    snapshot.verify()
    if static is not None and static.sha256 is not None and static.sha256 == snapshot.sha256:
        return static
    if static is None and lambda_layers is not None and not unsafe:
        return None
    fresh = snapshot.read_static()
    if static is not None and _reading(static) != _reading(fresh):
        raise BadInputError(
            f"{path}: the model file changed between its static check and the load "
            "(it reads as another model now): not loading it"
        )
    return fresh


def _reading(static: StaticModel) -> tuple[Any, ...]:
    """What a static read says about the model, for telling two reads of one path apart."""
    return (static.format, static.head, static.keras_version, static.lambda_layers, static.output_layers)


# Where Keras's deserialisation errors stop saying why and start dumping configs or advice.
_LOAD_ERROR_CUTS = (" Full object config:", " using config=", ". Please ensure", ". Make sure")


def load_error_line(exc: BaseException, limit: int = 200) -> str:
    """Why a Keras loader failed, in one short line: the innermost ``Exception encountered:`` of
    Keras's nested deserialisation errors, without the config dumps and advice around it."""
    text = str(exc).strip()
    marker = "Exception encountered:"
    if marker in text:
        text = text.rsplit(marker, 1)[1].strip()
    line = text.splitlines()[0].strip() if text else ""
    for cut in _LOAD_ERROR_CUTS:
        head = line.split(cut, 1)[0].strip()
        if head:
            line = head
    return (line or type(exc).__name__)[:limit]


def _load_with_keras3(
    src: Path, shown: Path, *, safe_mode: bool, on_note: Callable[[str], None] | None
) -> Any:
    """Keras 3's load of ``src`` (a private copy named after its content: Keras picks its reader
    by the suffix); ``shown`` is the path the user named, for notes."""
    import keras

    if src.suffix.lower() in (".h5", ".hdf5"):
        version, training_config = _h5_attributes(src, shown)
        if version is not None and version.startswith("3."):
            return keras.saving.load_model(src, safe_mode=safe_mode, compile=True)
        # A tf-keras / Keras 2 file: Keras 3 either fails to rebuild its compiled loss or
        # loads it as a plain string evaluate cannot call, so compile it again ourselves.
        model = keras.saving.load_model(src, safe_mode=safe_mode, compile=False)
        _recompile_from_training_config(model, training_config)
        if on_note is not None:
            on_note(
                f"{shown.name} was saved by Keras {version or 'unknown'}: loaded with compile=False "
                "and recompiled from its training_config"
            )
        return model
    return keras.saving.load_model(src, safe_mode=safe_mode, compile=True)


def _tf_keras_writer(snapshot: ModelSnapshot, static: StaticModel | None) -> str | None:
    """The Keras version that wrote the model when it may have been tf-keras or Keras 2
    (``"unknown"`` when the file does not say), or None for a Keras 3 file or one the static
    reader refuses."""
    if static is None:
        try:
            static = snapshot.read_static()
        except BadInputError:
            return None
    if static.keras_version is None:
        return "unknown"
    return None if static.keras_family is KerasFamily.KERAS3 else static.keras_version


def _load_with_tf_keras(p: Path, *, safe_mode: bool) -> tuple[Any, str | None]:
    """(model, None) loaded and compiled by tf_keras, or (model, why) loaded uncompiled when
    compiling it failed (a loss or metric tf_keras cannot rebuild)."""
    import contextlib

    import tf_keras

    try:
        # tf_keras applies safe_mode to .keras files only; its legacy .h5 loader reads the same
        # flag from this scope, so a Lambda's marshalled code stays refused there too.
        from tf_keras.src.saving.serialization_lib import SafeModeScope

        scope: contextlib.AbstractContextManager[Any] = SafeModeScope(safe_mode)
    except ImportError:  # another tf-keras layout: its own default applies
        scope = contextlib.nullcontext()
    with scope:
        try:
            return tf_keras.models.load_model(str(p), compile=True, safe_mode=safe_mode), None
        except Exception as exc:
            compile_error = load_error_line(exc)
            try:
                model = tf_keras.models.load_model(str(p), compile=False, safe_mode=safe_mode)
            except Exception:
                raise exc from None
            return model, compile_error
