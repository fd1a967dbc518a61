"""lossaudit: check that a classifier's labels, head, loss and metrics fit, and that its numbers are true."""

__version__ = "0.1.0"

__all__ = ["__version__"]
