"""The demo: the seed scenarios (product content, not an adapter), reproduced on bundled data.

:mod:`.scenarios` holds the scenarios: each trains small Keras models, audits them with the
core and proves the fix, through the shared :mod:`.harness`; :mod:`.render` prints them as text
or JSON; :mod:`.legacy` reproduces legacy ``'accuracy'`` with tf-keras in TF1 graph mode in a
child process (recordings in ``data/`` where tf-keras is missing; :mod:`.record` makes them);
:mod:`.pipeline` runs the scenarios as a ``kind: demo`` pipeline (report folders, MLflow runs).

The demo sits above the adapters: it may import core, keras, formats, sinks and the pipeline.
Importing this package imports nothing.
"""
