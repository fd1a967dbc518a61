"""A training run's held-out size, read from the dataset input it logged, sets the sampling interval
its validation metrics are judged with (other data: n known on both sides)."""

from __future__ import annotations

import numpy as np
import pytest

from lossaudit.core.compare import OTHER_DATA, TRAINING_DATA
from lossaudit.sources.mlflow import FetchedModel, held_out_size, parse_model_uri

pytestmark = pytest.mark.mlflow


def test_held_out_size_comes_from_the_validation_dataset_profile(
    sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import mlflow.data
    import pandas as pd

    # The environment, not mlflow.set_tracking_uri: a process-wide URI would outlive this test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    with mlflow.start_run() as run:
        train = mlflow.data.from_numpy(np.zeros((900, 4)), targets=np.zeros(900), name="train")
        val = mlflow.data.from_numpy(np.zeros((212, 4)), targets=np.zeros(212), name="val")
        mlflow.log_input(train, context="training")
        mlflow.log_input(val, context="validation")
        mlflow.log_metrics({"accuracy": 0.99, "val_accuracy": 0.91})
    with mlflow.start_run() as bare:
        mlflow.log_metric("val_accuracy", 0.9)
    with mlflow.start_run() as table:
        mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"a": range(57)}), name="t"), context="eval")
    client = mlflow.MlflowClient(sqlite_store)
    assert held_out_size(client.get_run(run.info.run_id)) == 212
    assert held_out_size(client.get_run(bare.info.run_id)) is None
    assert held_out_size(client.get_run(table.info.run_id)) == 57


def test_source_run_metrics_say_where_they_were_measured(tmp_path: object) -> None:
    fetched = FetchedModel(
        ref=parse_model_uri("runs:/abc/model"),
        tracking_uri="sqlite:///x.db",
        model_dir=tmp_path,  # type: ignore[arg-type]
        model_file=tmp_path,  # type: ignore[arg-type]
        reported={"accuracy": 0.99, "val_accuracy": 0.91},
        reported_n=212,
    )
    by_name = {m.name: m for m in fetched.reported_metrics()}
    assert (by_name["val_accuracy"].measured_on, by_name["val_accuracy"].n) == (OTHER_DATA, 212)
    assert (by_name["accuracy"].measured_on, by_name["accuracy"].n) == (TRAINING_DATA, None)
