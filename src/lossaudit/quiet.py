"""Warnings from other libraries that would break lossaudit's output contract.

A failing command prints one line on stderr; a passing one prints nothing there. MLflow and Great
Expectations import pyspark whenever it is installed, and pyspark 4 warns (``FutureWarning``) on
every import under pandas 3. That warning is about pyspark's own pandas support, not about the
audit, so lossaudit hides it where it imports those libraries.
"""

from __future__ import annotations

import warnings


def hide_pyspark_import_warnings() -> None:
    """Ignore the ``FutureWarning`` pyspark's modules raise on import (pandas 3 support)."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\.|$)")
