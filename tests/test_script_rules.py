"""Every rule that source code can show fires on a script and stays quiet on its near miss.

Each case is a small script written into a temporary folder (no project pins above it, so the
Keras family is unknown unless the case writes a ``requirements.txt``) and checked in-process.
``# expect: LA103`` marks the line and codes the check must report, exactly. A rule that needs
data, predictions or a saved model is listed in ``NOT_FROM_SOURCE`` with the reason;
``test_every_rule_is_covered`` fails for a new rule in neither table.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from lossaudit.core.catalogue import RULES
from lossaudit.script.check import check_paths

EXPECT = re.compile(r"#\s*expect:\s*((?:LA\d{3}\s*)+)")
HEADER = "import keras\nfrom keras import layers\nfrom sklearn.preprocessing import MultiLabelBinarizer\n"


@dataclass(frozen=True)
class Case:
    body: str
    requirements: str | None = None


FIRING: dict[str, Case] = {
    "LA101": Case(
        "model = keras.Sequential([layers.Dense(1, activation='sigmoid')])\n"
        "model.compile(loss='categorical_crossentropy')  # expect: LA101\n"
    ),
    "LA102": Case(
        "model = keras.Sequential([layers.Dense(1, activation='softmax')])  # expect: LA102\n"
        "model.compile(loss='binary_crossentropy')\n"
    ),
    "LA103": Case(
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='binary_crossentropy')  # expect: LA103\n"
    ),
    "LA104": Case(
        "model = keras.Sequential([layers.Dense(5, activation='sigmoid')])  # expect: LA104\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA105": Case(
        "y = MultiLabelBinarizer().fit_transform(tags)\n"
        "model = keras.Sequential([layers.Dense(5, activation='softmax')])\n"
        "model.compile(loss='binary_crossentropy')  # expect: LA105\n"
        "model.fit(x, y)\n"
    ),
    "LA106": Case(
        "y = keras.utils.to_categorical(raw, 5)\n"
        "model = keras.Sequential([layers.Dense(5, activation='sigmoid')])\n"
        "model.compile(loss='binary_crossentropy')  # expect: LA106\n"
        "model.fit(x, y)\n"
    ),
    "LA108": Case(
        "model = keras.Sequential([layers.Dense(3, activation='softmx')])  # expect: LA108\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA201": Case(
        "(x, y), _ = keras.datasets.mnist.load_data()\n"
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')  # expect: LA201\n"
        "model.fit(x, y)\n"
    ),
    "LA202": Case(
        "(x, y), _ = keras.datasets.mnist.load_data()\n"
        "y = keras.utils.to_categorical(y)\n"
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='sparse_categorical_crossentropy')  # expect: LA202\n"
        "model.fit(x, y)\n"
    ),
    "LA203": Case(
        "y = keras.utils.to_categorical(raw, num_classes=10)\n"
        "model = keras.Sequential([layers.Dense(5, activation='softmax')])  # expect: LA203\n"
        "model.compile(loss='categorical_crossentropy')\n"
        "model.fit(x, y)\n"
    ),
    "LA204": Case(
        "(x, y), _ = keras.datasets.cifar10.load_data()\n"
        "model = keras.Sequential([layers.Flatten(),\n"
        "                          layers.Dense(5, activation='softmax')])  # expect: LA204\n"
        "model.compile(loss='sparse_categorical_crossentropy')\n"
        "model.fit(x, y)\n"
    ),
    "LA301": Case(
        "model = keras.Sequential([layers.Dense(3, activation='softmax')])\n"
        "model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # expect: LA301\n"
    ),
    "LA302": Case(
        "model = keras.Sequential([layers.Dense(3)])\n"
        "model.compile(loss='sparse_categorical_crossentropy')  # expect: LA302\n"
    ),
    "LA303": Case(
        "model = keras.Sequential([layers.Dense(10, activation='softmax'),  # expect: LA303\n"
        "                          layers.Softmax()])\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA304": Case(
        "inputs = keras.Input(shape=(8,))\n"
        "outputs = layers.Dense(4, activation='relu')(inputs)  # expect: LA304\n"
        "model = keras.Model(inputs, outputs)\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA305": Case(
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='mse')  # expect: LA305\n"
    ),
    "LA401": Case(
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='binary_crossentropy', metrics=['accuracy'])  # expect: LA103 LA401\n",
        requirements="keras==2.2.4\n",
    ),
    "LA402": Case(
        "y = MultiLabelBinarizer().fit_transform(tags)\n"
        "model = keras.Sequential([layers.Dense(5, activation='sigmoid')])\n"
        "model.compile(loss='binary_crossentropy', metrics=['accuracy'])  # expect: LA402\n"
        "model.fit(x, y)\n",
        requirements="keras>=3.5,<4\n",
    ),
    "LA403": Case(
        "model = keras.Sequential([layers.Dense(1)])\n"
        "model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),  # expect: LA403\n"
        "              metrics=['accuracy'])\n"
    ),
}

QUIET: dict[str, Case] = {
    "LA101": Case(
        "model = keras.Sequential([layers.Dense(2, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA102": Case(
        "model = keras.Sequential([layers.Dense(1, activation='sigmoid')])\n"
        "model.compile(loss='binary_crossentropy')\n"
    ),
    "LA103": Case(
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA104": Case(
        "model = keras.Sequential([layers.Dense(5, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA105": Case(
        "y = MultiLabelBinarizer().fit_transform(tags)\n"
        "model = keras.Sequential([layers.Dense(5, activation='sigmoid')])\n"
        "model.compile(loss='binary_crossentropy', metrics=[keras.metrics.BinaryAccuracy()])\n"
        "model.fit(x, y)\n"
    ),
    "LA106": Case(  # the same head on multi-label targets is right
        "y = MultiLabelBinarizer().fit_transform(tags)\n"
        "model = keras.Sequential([layers.Dense(5, activation='sigmoid')])\n"
        "model.compile(loss='binary_crossentropy')\n"
        "model.fit(x, y)\n"
    ),
    "LA108": Case(
        "model = keras.Sequential([layers.Dense(3, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA201": Case(
        "(x, y), _ = keras.datasets.mnist.load_data()\n"
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')\n"
        "model.fit(x, keras.utils.to_categorical(y))\n"
    ),
    "LA202": Case(
        "(x, y), _ = keras.datasets.mnist.load_data()\n"
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='sparse_categorical_crossentropy')\n"
        "model.fit(x, y)\n"
    ),
    "LA203": Case(
        "y = keras.utils.to_categorical(raw, num_classes=10)\n"
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='categorical_crossentropy')\n"
        "model.fit(x, y)\n"
    ),
    "LA204": Case(
        "(x, y), _ = keras.datasets.cifar10.load_data()\n"
        "model = keras.Sequential([layers.Flatten(), layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='sparse_categorical_crossentropy')\n"
        "model.fit(x, y)\n"
    ),
    "LA301": Case(
        "model = keras.Sequential([layers.Dense(3)])\n"
        "model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
    ),
    "LA302": Case(
        "model = keras.Sequential([layers.Dense(3), layers.Activation('softmax')])\n"
        "model.compile(loss='sparse_categorical_crossentropy')\n"
    ),
    "LA303": Case(
        "model = keras.Sequential([layers.Dense(10), layers.Softmax()])\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA304": Case(
        "inputs = keras.Input(shape=(8,))\n"
        "hidden = layers.Dense(16, activation='relu')(inputs)\n"
        "outputs = layers.Dense(4, activation='softmax')(hidden)\n"
        "model = keras.Model(inputs, outputs)\n"
        "model.compile(loss='categorical_crossentropy')\n"
    ),
    "LA305": Case(  # an autoencoder: sigmoid reconstructions with MSE
        "model = keras.Sequential([layers.Dense(784, activation='sigmoid')])\nmodel.compile(loss='mse')\n"
    ),
    "LA401": Case(  # Keras 2.15 (tf.keras) resolves 'accuracy' from shapes
        "model = keras.Sequential([layers.Dense(10, activation='softmax')])\n"
        "model.compile(loss='binary_crossentropy', metrics=['accuracy'])  # expect: LA103\n",
        requirements="keras==2.15.0\n",
    ),
    "LA402": Case(
        "y = MultiLabelBinarizer().fit_transform(tags)\n"
        "model = keras.Sequential([layers.Dense(5, activation='sigmoid')])\n"
        "model.compile(loss='binary_crossentropy', metrics=['binary_accuracy'])\n"
        "model.fit(x, y)\n",
        requirements="keras>=3.5,<4\n",
    ),
    "LA403": Case(
        "model = keras.Sequential([layers.Dense(1)])\n"
        "model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),\n"
        "              metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)])\n"
    ),
}

NOT_FROM_SOURCE = {
    "LA801": "a fit's history (NaN loss): seen by the Keras callback during training",
    "LA802": "a fit's history (a loss that never moves): seen by the Keras callback",
    "LA803": "a fit's history (accuracy at the majority baseline): seen by the Keras callback",
    "LA107": "a saved model without a loss; a script that never compiles is not judged on the loss",
    "LA205": "the values of binary labels ({-1, 1}) are data",
    "LA206": "invalid label values are data",
    "LA306": "the range of served outputs is data",
    "LA501": "predictions",
    "LA502": "predictions",
    "LA503": "reported numbers",
    "LA504": "reported numbers",
    "LA505": "the metric classes a live Keras built",
    "LA506": "a pipeline's thresholds on recomputed metrics",
    "LA507": "predictions",
    "LA601": "data expectations",
    "LA602": "data expectations",
    "LA701": "audit stages",
}


def expected(text: str) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            out.update((number, code) for code in match.group(1).split())
    return out


def run(case: Case, folder: Path) -> tuple[set[tuple[int, str]], set[tuple[int, str]], Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".git").mkdir(exist_ok=True)  # the repository root: no pins from above it
    if case.requirements is not None:
        (folder / "requirements.txt").write_text(case.requirements, encoding="utf-8")
    text = HEADER + case.body
    script = folder / "train.py"
    script.write_text(text, encoding="utf-8")
    ast.parse(text)
    report = check_paths([script])
    assert report.context["not_parsed"] == []
    assert len(report.context["models"]) >= 1, "the model was not judged: the case would be vacuous"
    got = set()
    for f in report.findings:
        assert f.location is not None
        got.add((f.location.line, f.code))
    return got, expected(text), script


def test_every_rule_is_covered() -> None:
    codes = {r.code for r in RULES}
    assert set(FIRING) == set(QUIET)
    assert set(FIRING) | set(NOT_FROM_SOURCE) == codes
    assert not set(FIRING) & set(NOT_FROM_SOURCE)


@pytest.mark.parametrize("code", sorted(FIRING))
def test_rule_fires_at_its_line(code: str, tmp_path: Path) -> None:
    got, wanted, _ = run(FIRING[code], tmp_path)
    assert any(c == code for _, c in wanted)
    assert got == wanted


@pytest.mark.parametrize("code", sorted(QUIET))
def test_rule_is_quiet_on_its_near_miss(code: str, tmp_path: Path) -> None:
    got, wanted, _ = run(QUIET[code], tmp_path)
    assert code not in {c for _, c in got}
    assert got == wanted


@pytest.mark.parametrize("code", sorted(FIRING))
def test_the_suggested_lines_fix_the_finding(code: str, tmp_path: Path) -> None:
    """Applying a finding's suggestion gives valid Python on which that finding is gone.

    A finding whose rule proposes no head change (``head_fix`` None: LA108 names the nearest known
    name, LA403's fix is a metric object) has nothing to write as code; every other one must."""
    _, _, script = run(FIRING[code], tmp_path)
    report = check_paths([script])
    for finding in report.findings:
        if finding.code != code or not finding.suggestions:
            continue
        lines = script.read_text(encoding="utf-8").split("\n")
        for edit in sorted(finding.suggestions, key=lambda e: e.first_line, reverse=True):
            lines[edit.first_line - 1 : edit.last_line] = edit.replacement.split("\n")
        fixed = "\n".join(lines)
        ast.parse(fixed)
        script.write_text(fixed, encoding="utf-8")
        assert code not in {f.code for f in check_paths([script]).findings}, fixed
        return
    own = [f for f in report.findings if f.code == code]
    assert own, f"{code} did not fire"
    assert all(f.head_fix is None for f in own), f"{code} proposes a head change but has no suggestion"
