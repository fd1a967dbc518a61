"""The audit as an explicit pipeline, and the pipeline files that drive it.

:mod:`lossaudit.pipeline.stages` holds the stages of ``lossaudit audit`` --
validate_labels -> check_compatibility -> obtain_model -> predict -> recompute -> compare ->
report -> log -- each a function from the earlier stages' frozen results to its own, and the
runner that times them into the report. :mod:`lossaudit.pipeline.config` reads the
``pipelines/*.yaml`` files that ``lossaudit run`` executes.

Importing this package imports neither module: both are imported where they are used, so the CLI
starts without numpy, Keras or MLflow.
"""
