"""A fuzz corpus smoke for saved models: mutants of every committed .keras and .h5 fixture are read
by the static reader, which returns a model or raises BadInputError, never anything else; and a
sample of them goes through the installed ``lossaudit check --model`` as real processes, each
ending with exit 0, 1 or 2 and at most one stderr line, never a traceback.

Mutants per test come from the Hypothesis profile (tests/conftest.py): 200 in CI, 10,000 with
HYPOTHESIS_PROFILE=deep.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lossaudit.errors import BadInputError
from lossaudit.keras.static import StaticModel, read_model_file

pytestmark = pytest.mark.reliability

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
FIXTURES = sorted(
    p for p in MODELS.iterdir() if p.suffix in (".keras", ".h5") and p.name != "truncated.keras"
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of: flipped bits, a truncation, inserted or deleted bytes, a copied block, a zeroed run."""
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # flip a few bits
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del buf[rng.randrange(len(buf)) :]
    elif kind == 2:  # insert random bytes
        i = rng.randrange(len(buf) + 1)
        buf[i:i] = rng.randbytes(rng.randint(1, 64))
    elif kind == 3:  # delete a run
        i = rng.randrange(len(buf))
        del buf[i : i + rng.randint(1, 256)]
    elif kind == 4:  # copy a block elsewhere (duplicated headers, offsets pointing anywhere)
        i, j = rng.randrange(len(buf)), rng.randrange(len(buf))
        block = buf[i : i + rng.randint(1, 512)]
        buf[j : j + len(block)] = block
    else:  # zero a run (lengths and offsets become 0)
        i = rng.randrange(len(buf))
        n = rng.randint(1, 64)
        buf[i : i + n] = bytes(min(n, len(buf) - i))
    return bytes(buf)


@given(
    fixture=st.sampled_from(FIXTURES),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    rounds=st.integers(min_value=1, max_value=3),
)
def test_static_reader_returns_a_model_or_refuses(fixture: Path, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    data = fixture.read_bytes()
    for _ in range(rounds):
        data = mutate(data, rng)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / fixture.name
        path.write_bytes(data)
        try:
            model = read_model_file(path)
        except BadInputError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert isinstance(model, StaticModel)


def _script() -> list[str]:
    script = Path(sys.executable).with_name("lossaudit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lossaudit"]


@pytest.mark.parametrize("fixture", FIXTURES[::3], ids=lambda p: p.name)
def test_mutants_through_the_cli_are_one_line_at_most(fixture: Path, tmp_path: Path) -> None:
    rng = random.Random(fixture.name)
    for number in range(3):
        path = tmp_path / f"m{number}{fixture.suffix}"
        path.write_bytes(mutate(fixture.read_bytes(), rng))
        done = subprocess.run(
            [*_script(), "check", "--model", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        assert done.returncode in (0, 1, 2), done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) <= 1, done.stderr
        if done.returncode == 2:
            assert done.stderr.startswith("lossaudit: error: ")
