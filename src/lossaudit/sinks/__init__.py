"""Where a finished report goes: the local report folder (``local``), then MLflow.

The local folder is always written first and never needs a server: when MLflow is down the audit
still leaves a complete folder, which ``lossaudit log REPORT_DIR`` uploads later (MLflow logging
itself is ``lossaudit.sinks.mlflow``).
"""
