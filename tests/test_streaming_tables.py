"""Parquet and CSV eval data read a batch of rows at a time into a memory-mapped float32 spill.

The streamed read must give what the whole read gave (``pd.read_parquet``/``pd.read_csv``, then
``to_numpy``; kept below as :func:`whole_read`): the same features, labels, dtypes and data hash,
and the same error line for the same bad table. The spill never shows up as a file, and its
mapping goes when x does.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossaudit.errors import BadInputError, first_line
from lossaudit.pipeline.stages import data_sha256
from lossaudit.sources import tables
from lossaudit.sources.files import _check_rows, load_dataset, select_columns
from lossaudit.sources.tables import FeatureSpill, read_table_dataset

SMALL_BATCH = 200
"""Bytes per batch: a handful of rows, so every table here is read in several batches."""


def whole_read(path: Path, label_columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``load_dataset``'s table branch as it was before it streamed: the whole table in pandas."""
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:
        raise BadInputError(f"data file {path} is not a readable table: {first_line(exc)}") from None
    cols = select_columns(frame, label_columns, "data")
    y = frame[cols].to_numpy()
    y = y[:, 0] if len(cols) == 1 else y
    features = frame.drop(columns=cols)
    if features.shape[1] == 0:
        raise BadInputError(f"data file {path}: no feature columns besides the label column(s) {cols}")
    non_numeric = [c for c in features.columns if features[c].dtype.kind not in "biuf"]
    if non_numeric:
        raise BadInputError(f"data file {path}: feature column(s) {non_numeric[:5]} are not numeric")
    x = features.to_numpy(dtype=np.float32)
    _check_rows(x, y, f"data file {path}")
    return x, y


def streamed_read(
    path: Path, label_columns: Sequence[str], batch: int = SMALL_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`load_dataset` with batches of ``batch`` bytes."""
    old = tables.BATCH_BYTES
    tables.BATCH_BYTES = batch
    try:
        return load_dataset(path, label_columns)
    finally:
        tables.BATCH_BYTES = old


def outcome(read: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray] | str:
    try:
        return read()
    except BadInputError as exc:
        return str(exc)


def assert_same(
    path: Path, label_columns: Sequence[str], batch: int = SMALL_BATCH
) -> tuple[np.ndarray, np.ndarray] | str:
    """The streamed read gives the whole read's arrays (values, dtypes, hash) or its error line."""
    expected = outcome(lambda: whole_read(path, label_columns))
    got = outcome(lambda: streamed_read(path, label_columns, batch))
    if isinstance(expected, str) or isinstance(got, str):
        assert got == expected
        return got
    (x0, y0), (x, y) = expected, got
    assert isinstance(x, np.memmap) or len(x) == 0
    assert not x.flags.writeable or len(x) == 0
    assert x.dtype == x0.dtype == np.float32 and x.shape == x0.shape
    np.testing.assert_array_equal(x, x0)
    assert y.dtype == y0.dtype and y.shape == y0.shape
    if y.dtype.kind == "O":  # text (NaN for a missing one) or arrays: element by element
        assert all(_same_value(a, b) for a, b in zip(y.ravel(), y0.ravel(), strict=True)), (y, y0)
    else:
        np.testing.assert_array_equal(y, y0)
    assert data_sha256(x, y) == data_sha256(x0, y0)
    return got


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return type(a) is type(b) and (a == b or (pd.isna(a) and pd.isna(b)))


def write(frame: pd.DataFrame, folder: Path, suffix: str, **kwargs: Any) -> Path:
    path = folder / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, **kwargs)
    return path


def table(rows: int = 97, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "f32": rng.normal(size=rows).astype(np.float32),
            "f64": rng.normal(size=rows),
            "count": rng.integers(-5, 5, rows),
            "flag": rng.integers(0, 2, rows).astype(bool),
            "label": rng.integers(0, 3, rows),
        }
    )
    onehot = np.eye(3, dtype=np.int64)[frame["label"]]
    for k in range(3):
        frame[f"label_{k}"] = onehot[:, k]
    return frame


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize(
    "labels",
    [["label"], ["label_*"], ["label_2", "label_0", "label_1"], ["label", "f*"]],
    ids=["index", "one-hot-glob", "reordered", "several-patterns"],
)
def test_the_streamed_read_is_the_whole_read(tmp_path: Path, suffix: str, labels: list[str]) -> None:
    frame = table()
    if labels == ["label"]:
        frame = frame.drop(columns=["label_0", "label_1", "label_2"])
    kwargs = {"row_group_size": 40} if suffix == ".parquet" else {}
    path = write(frame.set_index(np.arange(len(frame)) * 3), tmp_path, suffix, **kwargs)
    appended: list[int] = []
    original = FeatureSpill.append

    def counting(self: FeatureSpill, block: np.ndarray) -> None:
        appended.append(len(block))
        original(self, block)

    FeatureSpill.append = counting  # type: ignore[method-assign]
    try:
        got = assert_same(path, labels)
    finally:
        FeatureSpill.append = original  # type: ignore[method-assign]
    assert not isinstance(got, str)
    assert len(appended) > 3 and sum(appended) == len(frame)  # several batches


def test_a_parquet_array_column(tmp_path: Path) -> None:
    """A list column is labels as pandas reads them (arrays, for the label detector to judge);
    as features it is refused as it was (the Spark engine reads both)."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"a": rng.normal(size=20), "target": list(np.eye(4, dtype=np.float32)[rng.integers(0, 4, 20)])}
    )
    path = write(frame, tmp_path, ".parquet")
    _x, y = assert_same(path, ["target"])  # type: ignore[misc]
    assert y.dtype == object and y.shape == (20,)
    message = assert_same(write(frame.rename(columns={"a": "y"}), tmp_path, ".parquet"), ["y"])
    assert message == f"data file {tmp_path / 'data.parquet'}: feature column(s) ['target'] are not numeric"


def _bad_tables() -> Iterator[Any]:
    base = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "b": [1, 2, 3, 4], "y": [0, 1, 0, 1]})
    for suffix in (".parquet", ".csv"):
        yield pytest.param(base.assign(b=["x", "y", "z", "w"]), suffix, ["y"], id=f"text{suffix}")
        yield pytest.param(base.assign(a=[0.5, np.nan, 1, 2]), suffix, ["y"], id=f"nan{suffix}")
        yield pytest.param(base.assign(a=[0.5, np.inf, 1, 2]), suffix, ["y"], id=f"inf{suffix}")
        yield pytest.param(base, suffix, ["label"], id=f"no-label-column{suffix}")
        yield pytest.param(base[["y"]], suffix, ["y"], id=f"no-features{suffix}")
        yield pytest.param(base, suffix, ["*"], id=f"all-labels{suffix}")
        yield pytest.param(base.assign(b=[True, None, False, True]), suffix, ["y"], id=f"bool-null{suffix}")
        yield pytest.param(base.assign(b=[1, None, 3, 4]), suffix, ["y"], id=f"int-null{suffix}")
        yield pytest.param(
            base.assign(y=["cat", "dog", None, "cat"]), suffix, ["y"], id=f"text-labels{suffix}"
        )
        yield pytest.param(base.iloc[:0], suffix, ["y"], id=f"no-rows{suffix}")
    when = pd.to_datetime(["2020-01-01"] * 4)
    yield pytest.param(base.assign(b=when), ".parquet", ["y"], id="timestamps")
    yield pytest.param(base.assign(b=pd.Categorical(["u", "v", "u", "v"])), ".parquet", ["y"], id="category")
    yield pytest.param(base.assign(b=[None] * 4), ".parquet", ["y"], id="all-null")


@pytest.mark.parametrize(("frame", "suffix", "labels"), _bad_tables())
def test_bad_tables_fail_as_they_did(
    tmp_path: Path, frame: pd.DataFrame, suffix: str, labels: list[str]
) -> None:
    assert_same(write(frame, tmp_path, suffix), labels)


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("f,y\n" + "1.5,0\n" * 30 + "oops,1\n", ["y"]),  # text after several numeric batches
        ("f,y\n0,1\n1,2,3\n", ["y"]),  # ragged
        ("f,f,y\n1,2,0\n3,4,1\n", ["f.1"]),  # a repeated name: pandas calls it f.1
        ("f,,y\n1,2,0\n3,4,1\n", ["Unnamed: 1"]),
        ("f,y\n", ["y"]),  # header only: object columns
        ("\n\nf,y\n1,0\n\n2,1\n", ["y"]),  # blank lines
        ('f,y\n1,"0"\n2,""\n3,NA\n', ["y"]),  # NaN labels (float)
        ("f,y\n" + "1,0\n" * 30 + "2,0.5\n", ["y"]),  # ints, then a float in a later batch
        ("f,y\n" + "1,0\n" * 30 + "2,cat\n", ["y"]),  # ints, then text
        ("f,y\n1,True\n2,False\n", ["y"]),
        ("f,b,y\n" + "1,True,0\n" * 20 + "1,,0\n" * 20, ["y"]),  # booleans, then only blanks
    ],
    ids=[
        "late-text",
        "ragged",
        "repeated-name",
        "unnamed",
        "header-only",
        "blank-lines",
        "nan-labels",
        "late-float-label",
        "late-text-label",
        "bool-labels",
        "late-blank-booleans",
    ],
)
def test_csv_quirks_read_as_pandas_reads_them(tmp_path: Path, text: str, labels: list[str]) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text)
    assert_same(path, labels)


def test_garbage_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4 + b"PAR1")
    with pytest.raises(BadInputError, match=r"^data file .*data\.parquet is not a readable table: "):
        streamed_read(path, ["y"])
    # Read whole, a garbage CSV failed on its third line; streamed, its header is read first and
    # names no label column.
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(BadInputError, match=r"^data: no column matches 'y'; columns are \['\\x00"):
        streamed_read(path, ["y"])


# --- the spill ------------------------------------------------------------------------------------


def _mapped_from(folder: Path) -> list[str]:
    """This process's mappings and open files in ``folder`` (the spill, while x lives)."""
    found = [line for line in Path("/proc/self/maps").read_text().splitlines() if str(folder) in line]
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


@pytest.fixture
def spill_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc")
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_the_spill_is_never_a_file_and_goes_with_x(tmp_path: Path, spill_folder: Path, suffix: str) -> None:
    path = write(table(), tmp_path, suffix)
    x, _y = streamed_read(path, ["label_*"])
    assert list(spill_folder.iterdir()) == []  # unnamed (or unlinked as soon as it was made)
    mapped = _mapped_from(spill_folder)
    assert mapped and all("(deleted)" in line for line in mapped), mapped  # the mapping only
    assert float(x[-1].sum()) == float(np.asarray(x[-1]).sum())
    del x
    gc.collect()
    assert _mapped_from(spill_folder) == []  # its disk space is back
    assert list(spill_folder.iterdir()) == []


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_failed_read_leaves_nothing(tmp_path: Path, spill_folder: Path, suffix: str) -> None:
    """A column found not numeric in the last batch, after the spill has taken the others."""
    frame = table().astype({"flag": object})
    frame.loc[len(frame) - 1, "flag"] = None if suffix == ".parquet" else "oops"
    # Without statistics the null of a Parquet boolean column is only met in its batch.
    path = write(frame, tmp_path, suffix, write_statistics=False)
    with pytest.raises(BadInputError, match=r"feature column\(s\) \['flag'\] are not numeric"):
        streamed_read(path, ["label_*"])
    gc.collect()
    assert _mapped_from(spill_folder) == []
    assert list(spill_folder.iterdir()) == []


def test_a_spill_that_cannot_be_written_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossaudit.errors import LossauditError

    with FeatureSpill(3) as spill:

        def full(data: Any) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(spill._file, "write", full)
        with pytest.raises(
            LossauditError, match=r"^cannot write the features .*No space left on device; set TMPDIR"
        ):
            spill.append(np.zeros((2, 3), dtype=np.float32))


def test_an_empty_table_is_an_empty_array(tmp_path: Path) -> None:
    path = write(table().iloc[:0], tmp_path, ".parquet")
    x, y = read_table_dataset(path, ["label"])
    assert x.shape == (0, 7) and x.dtype == np.float32 and y.shape == (0,)


# --- any numeric table ------------------------------------------------------------------------------

_COLUMN = st.sampled_from(["float32", "float64", "int64", "uint8", "bool"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtypes=st.lists(_COLUMN, min_size=1, max_size=5),
    rows=st.integers(1, 60),
    labels=st.integers(1, 3),
    batch=st.integers(1, 400),
    seed=st.integers(0, 2**16),
    suffix=st.sampled_from([".parquet", ".csv"]),
)
def test_any_numeric_table_streams_to_the_whole_read(
    tmp_path: Path, dtypes: list[str], rows: int, labels: int, batch: int, seed: int, suffix: str
) -> None:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i, dtype in enumerate(dtypes):
        if dtype == "bool":
            columns[f"c{i}"] = rng.integers(0, 2, rows).astype(bool)
        elif dtype.startswith("float"):
            columns[f"c{i}"] = (rng.normal(size=rows) * 10.0 ** rng.integers(-8, 9)).astype(dtype)
        else:
            columns[f"c{i}"] = rng.integers(0, 200, rows).astype(dtype)
    for k in range(labels):
        columns[f"y{k}"] = rng.integers(0, 4, rows)
    path = write(pd.DataFrame(columns), tmp_path, suffix, row_group_size=max(1, rows // 3))
    assert not isinstance(assert_same(path, ["y*"], batch), str)


def test_labels_and_predictions_of_a_parquet_file_read_only_their_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check --labels` and `compare` read a Parquet file's named columns alone, with the values
    (and messages) of a whole read."""
    import pandas as pd

    from lossaudit.sources.files import load_labels, load_predictions

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50, 30)), columns=[f"f{i}" for i in range(30)])
    for j in range(3):
        frame[f"label_{j}"] = (rng.integers(0, 3, 50) == j).astype(np.int64)
        frame[f"p_{j}"] = rng.random(50)
    frame.index = pd.RangeIndex(100, 150, name="row")  # a stored index is not a column
    path = tmp_path / "eval.parquet"
    frame.to_parquet(path)
    single = tmp_path / "y.parquet"
    frame[["label_0"]].to_parquet(single)

    asked: list[object] = []
    real = pd.read_parquet

    def recording(p: object, *args: object, **kwargs: object) -> pd.DataFrame:
        asked.append(kwargs.get("columns"))
        return real(p, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pd, "read_parquet", recording)
    whole = real(path)
    assert np.array_equal(load_labels(path, ["label_*"]), whole[["label_0", "label_1", "label_2"]].to_numpy())
    assert np.array_equal(load_labels(path, ["label_1"]), whole["label_1"].to_numpy())
    assert np.array_equal(load_predictions(path, ["p_*"]), whole[["p_0", "p_1", "p_2"]].to_numpy())
    assert np.array_equal(load_labels(single), real(single)["label_0"].to_numpy())
    assert asked == [["label_0", "label_1", "label_2"], ["label_1"], ["p_0", "p_1", "p_2"], ["label_0"]]

    with pytest.raises(BadInputError, match=r"^labels file .* has 36 columns; name the label column"):
        load_labels(path)
    with pytest.raises(BadInputError, match=r"^labels: no column matches 'y'"):
        load_labels(path, ["y"])
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not a footer")
    with pytest.raises(BadInputError, match=r"^labels file .* is not a readable table: "):
        load_labels(broken, ["y"])


def test_labels_and_predictions_of_a_csv_are_read_a_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check --labels` and `compare` keep the named columns of a CSV file and parse the rest a
    batch of rows at a time, with the values, types and messages of a whole read."""
    import pandas as pd

    from lossaudit.sources import tables
    from lossaudit.sources.files import load_labels, load_predictions

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50, 30)), columns=[f"f{i}" for i in range(30)])
    for j in range(3):
        frame[f"label_{j}"] = (rng.integers(0, 3, 50) == j).astype(np.int64)
        frame[f"p_{j}"] = rng.random(50)
    frame["kind"] = np.where(rng.random(50) < 0.5, "cat", "dog")  # text: kept for the detector
    # Integers in the first rows, text in the last: typed once, as text, as a whole read types it.
    frame["mixed"] = [str(i) for i in range(45)] + ["x"] * 5
    frame.insert(1, "f0", 0.5, allow_duplicates=True)  # a repeated name: pandas reads f0, f0.1
    path = tmp_path / "eval.csv"
    frame.to_csv(path, index=False)
    single = tmp_path / "y.csv"
    frame[["label_0"]].to_csv(single, index=False)

    asked: list[object] = []
    real = pd.read_csv

    def recording(p: object, *args: object, **kwargs: object) -> pd.DataFrame:
        if kwargs.get("nrows") == 0:
            asked.append("header")
        elif "chunksize" in kwargs:
            asked.append(f"batches of {kwargs['chunksize']}")
        else:
            asked.append(kwargs.get("usecols", "whole"))
        return real(p, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(pd, "read_csv", recording)
    monkeypatch.setattr(tables, "BATCH_BYTES", 20 * 39 * 8)  # 20 rows of the 39 columns a batch
    whole = real(path)
    assert list(whole.columns[:2]) == ["f0", "f0.1"]
    labels = load_labels(path, ["label_*"])
    assert np.array_equal(labels, whole[["label_0", "label_1", "label_2"]].to_numpy())
    assert labels.dtype == whole["label_0"].to_numpy().dtype
    assert np.array_equal(load_labels(path, ["f0.1"]), whole["f0.1"].to_numpy())
    text = load_labels(path, ["kind"])
    assert text.dtype == object and list(text) == list(whole["kind"])
    mixed = load_labels(path, ["mixed"])
    assert list(mixed) == list(whole["mixed"]) and all(isinstance(v, str) for v in mixed)
    assert np.array_equal(load_predictions(path, ["p_*"]), whole[["p_0", "p_1", "p_2"]].to_numpy())
    assert np.array_equal(load_labels(single), real(single)["label_0"].to_numpy())
    batches = "batches of 20"
    assert asked == [
        *("header", batches) * 3,
        *("header", batches, [list(whole.columns).index("mixed")]),
        *("header", batches),
        "header",
        "batches of 780",  # one column: 780 rows a batch
    ]

    with pytest.raises(BadInputError, match=r"^labels file .* has 39 columns; name the label column"):
        load_labels(path)
    with pytest.raises(BadInputError, match=r"^labels: no column matches 'y'"):
        load_labels(path, ["y"])
    for name, content in (("ragged.csv", b"y\n0\n1,2,3\n"), ("binary.csv", bytes(range(256)) * 4)):
        broken = tmp_path / name
        broken.write_bytes(content)
        with pytest.raises(BadInputError, match=r"^labels file .* is not a readable table: "):
            load_labels(broken)
