"""Data validation adapters: expectations generated from the head spec, run by an external validator.

Importing this package is cheap: Great Expectations is imported only inside
:func:`validate_with_gx`, never at module level (its import takes seconds).
"""

from __future__ import annotations

from lossaudit.validation.gx import GxValidation, validate_with_gx

__all__ = ["GxValidation", "validate_with_gx"]
