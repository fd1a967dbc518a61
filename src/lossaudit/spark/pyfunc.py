"""The MLflow pyfunc model the Spark engine predicts through (``mlflow.pyfunc.spark_udf``).

A saved Keras file goes through ``spark_udf`` as this wrapper: the file is its artifact, and
:meth:`KerasFeaturesModel.predict` stacks a column of feature arrays into the matrix Keras takes
(``spark_udf`` itself cannot: an array column reaches a plain Keras pyfunc as objects). The model
is loaded on each worker by :func:`lossaudit.keras.live.load_model_file`, with the audit's
``unsafe`` decision, and run by :func:`lossaudit.keras.predict.predict_in_batches`: the same
loading and the same batching as a local audit. Workers therefore need lossaudit installed.

This module imports MLflow at the top: import it only to save or load the wrapper.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

MODEL_ARTIFACT = "model"


def output_name(index: int) -> str:
    """The name of output unit ``index`` in the wrapper's result (and the UDF's struct)."""
    return f"p{index}"


def features_matrix(model_input: Any) -> Any:
    """A pandas DataFrame of one array column, or of one numeric column per feature, as a float32
    (n, d) matrix."""
    import numpy as np

    if (
        model_input.shape[1] == 1
        and model_input.shape[0]
        and isinstance(model_input.iloc[0, 0], np.ndarray | list)
    ):
        return np.stack([np.asarray(v, dtype=np.float32) for v in model_input.iloc[:, 0].to_numpy()])
    return model_input.to_numpy(dtype=np.float32)


class KerasFeaturesModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]  # mlflow is untyped here
    """A Keras model file as a pyfunc model over a column of feature arrays (or one column per
    feature)."""

    _skip_type_hint_validation = True
    """MLflow leaves predict() as it is: no schema from its type hints, no warning for their lack."""

    def __init__(self, *, unsafe: bool = False, batch_size: int = 256) -> None:
        self.unsafe = unsafe
        self.batch_size = batch_size
        self._model: Any = None

    def load_context(self, context: Any) -> None:
        from lossaudit.keras.live import load_model_file

        self._model = load_model_file(context.artifacts[MODEL_ARTIFACT], unsafe=self.unsafe)

    # No annotations: MLflow would read them as an input schema when saving, and warn.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        import numpy as np
        import pandas as pd

        from lossaudit.keras.predict import predict_in_batches

        x = features_matrix(model_input)
        if x.shape[0] == 0:
            return pd.DataFrame({output_name(0): np.zeros(0)})
        out = predict_in_batches(self._model, x, batch_size=self.batch_size, progress=False)
        # Named columns: spark_udf returns them as a struct, column by column (an array result
        # would go through one Python list per row).
        return pd.DataFrame(out, columns=[output_name(i) for i in range(out.shape[1])])

    def __getstate__(self) -> dict[str, Any]:
        # The loaded Keras model stays on the worker that loaded it; only the settings travel.
        return {"unsafe": self.unsafe, "batch_size": self.batch_size, "_model": None}


def save_wrapper(folder: str, model_file: str, *, unsafe: bool, batch_size: int) -> None:
    """Save the pyfunc wrapper of ``model_file`` to ``folder`` (which must not exist)."""
    import logging
    import warnings

    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.pyfunc.save_model(
                folder,
                python_model=KerasFeaturesModel(unsafe=unsafe, batch_size=batch_size),
                artifacts={MODEL_ARTIFACT: model_file},
                # Given requirements, MLflow does not load the model in a subprocess to infer them.
                pip_requirements=["lossaudit"],
            )
    finally:
        quiet.setLevel(level)
