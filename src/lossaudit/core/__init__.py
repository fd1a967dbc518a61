"""The framework-neutral audit core: labels, head spec, rules, metrics, comparison, report.

Nothing here imports TensorFlow, Keras, MLflow or Great Expectations; numpy and scikit-learn are
imported only inside the functions that compute.
"""
