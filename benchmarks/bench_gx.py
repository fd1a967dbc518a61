"""Time the Great Expectations adapter: first call (with the GX import), later calls, and the two ways
of checking a wide feature matrix (one expectation pair per column vs one derived row-wise column).

Run: ``python benchmarks/bench_gx.py`` (about 15 s). Prints one line per measurement.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_digits

from lossaudit.core.head import HeadSpec
from lossaudit.validation import gx as gx_adapter
from lossaudit.validation import validate_with_gx

REPEATS = 3


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def median_of(call: Callable[[], object]) -> float:
    return statistics.median(timed(call) for _ in range(REPEATS))


def main() -> int:
    x, y = load_digits(return_X_y=True)
    head = HeadSpec.from_values(units=10, activation="softmax", loss="sparse_categorical_crossentropy")
    assert "great_expectations" not in sys.modules
    first = timed(lambda: validate_with_gx(y, head, x))
    print(f"first call, digits 1797x64 (includes the GX import): {first:.2f} s")
    later = median_of(lambda: validate_with_gx(y, head))
    print(f"later call, labels only (1797 rows): {later:.3f} s")
    big_x = np.tile(x, (6, 1))[:10_000]
    big_y = np.tile(y, 6)[:10_000]
    for label, xs, ys in (("digits 1797x64", x, y), ("10000x64", big_x, big_y)):
        combined = median_of(lambda xs=xs, ys=ys: validate_with_gx(ys, head, xs))
        limit = gx_adapter.PER_COLUMN_LIMIT
        gx_adapter.PER_COLUMN_LIMIT = 10_000  # force one not-null + one finiteness expectation per column
        try:
            per_column = median_of(lambda xs=xs, ys=ys: validate_with_gx(ys, head, xs))
        finally:
            gx_adapter.PER_COLUMN_LIMIT = limit
        print(f"{label}: combined row-wise check {combined:.3f} s, per-column checks {per_column:.3f} s")
    one_hot = HeadSpec.from_values(units=10, activation="softmax", loss="categorical_crossentropy")
    y_one_hot = np.eye(10)[y]
    n_checks = len(validate_with_gx(y_one_hot, one_hot).checks)
    seconds = median_of(lambda: validate_with_gx(y_one_hot, one_hot))
    print(f"one-hot labels 1797x10 ({n_checks} expectations): {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
