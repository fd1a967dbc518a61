"""The schema of a pipeline file: every key typed, validated strictly, errors naming the key path.

:func:`validate_pipeline` checks a loaded (and ``${VAR}``-expanded) YAML tree against typed
pydantic models, one per ``kind``, and raises one :class:`~lossaudit.errors.BadInputError` line
naming the key path of the first problem::

    pipeline p.yaml: audits[0].retrain.epochs: expected an integer, got 'ten'

The rules, for every key:

* integers are integers (``10``, or the text of one, as ``${EPOCHS:-10}`` expands to): not
  ``'ten'``, not ``10.5``, not ``true``, and within a stated range;
* numbers are finite numbers (or the text of one);
* flags are ``true``/``false`` (or the words YAML reads as those: ``yes``, ``off``, ...): the text
  ``"false"`` is false, never truthy;
* names and paths are strings (a number is refused: quote it);
* a key a kind does not know is refused.

The rule configuration keys (``select``, ``ignore``, ``severity``, ``fail_on``, ``alpha``,
``tolerance``) are type-checked here; their values (rule codes, severities, ranges) are judged by
:class:`~lossaudit.core.config.RuleConfig`.

:func:`pipeline_json_schema` is the same schema as JSON Schema, for editors; it is committed at
``docs/pipeline.schema.json`` (regenerate with ``python -m lossaudit.pipeline.schema
docs/pipeline.schema.json``; a test keeps the two equal). A pipeline file points an editor at it
with a first line ``# yaml-language-server: $schema=../docs/pipeline.schema.json``. Where a
typed key holds a ``${VAR}`` placeholder, the schema accepts the text: its value is known only
once expanded.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lossaudit.errors import BadInputError

KINDS = ("audit", "demo", "registry")
SCHEMA_ID = "https://github.com/lossaudit/lossaudit/blob/main/docs/pipeline.schema.json"

MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1_000_000
MAX_SEED = 2**32 - 1
"""numpy and Keras seeds are 32-bit."""
MAX_SEEDS = 1_000
MAX_WORKERS = 256
MAX_REPORTED_N = 10**12

_PLACEHOLDER = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
_INT_TEXT = r"\s*[+-]?[0-9]+\s*"
_FLOAT_TEXT = r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"
_TRUE = ("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON")
_FALSE = ("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF")
"""The words PyYAML reads as booleans: a string holding one (from ``${VAR}``) means the same."""


# --- values ------------------------------------------------------------------------------------


def show(value: Any) -> str:
    """A value as the user wrote it, in one short piece: ``'ten'``, ``null``, ``true``, ``7``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    if isinstance(value, Mapping):
        return "a mapping" if value else "an empty mapping"
    try:
        text = repr(value)
    except Exception:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("lossaudit", "{message}", {"message": message})


def _placeholder_text(schema: dict[str, Any], text_pattern: str) -> dict[str, Any]:
    """``schema``, or the text of such a value, or a ``${VAR}`` placeholder."""
    return {"anyOf": [schema, {"type": "string", "pattern": f"^({text_pattern})$|{_PLACEHOLDER}"}]}


def _integer_check(minimum: int, maximum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(_INT_TEXT, value) and len(value) < 100:
            number = int(value)
        if number is None:
            raise _error(f"expected an integer, got {show(value)}")
        if not minimum <= number <= maximum:
            raise _error(f"expected an integer from {minimum} to {maximum}, got {show(number)}")
        return number

    return check


def _integer_schema(minimum: int, maximum: int) -> WithJsonSchema:
    schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    return WithJsonSchema(_placeholder_text(schema, _INT_TEXT))


def _check_number(value: Any) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond 1.8e308
            number = math.inf
    elif isinstance(value, str) and re.fullmatch(_FLOAT_TEXT, value) and len(value) < 100:
        number = float(value)
    if number is None:
        raise _error(f"expected a number, got {show(value)}")
    if not math.isfinite(number):
        raise _error(f"expected a finite number, got {show(value)}")
    return number


def _check_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _TRUE + _FALSE:
        return value in _TRUE
    raise _error(f"expected true or false, got {show(value)}")


def _check_text(value: Any) -> str:
    if not isinstance(value, str):
        hint = "; quote it" if isinstance(value, int | float) and not isinstance(value, bool) else ""
        raise _error(f"expected a string, got {show(value)}{hint}")
    return value


def _check_path(value: Any) -> str:
    text = _check_text(value)
    if not text.strip():
        raise _error("expected a path, got an empty string")
    return text


def _check_names(value: Any) -> list[str]:
    """A name or a list of names (a bare string is one name, not its characters)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _error(f"expected a name or a list of names, got {show(value)}")


def _check_engine(value: Any) -> str:
    if not isinstance(value, str) or value not in ("local", "spark"):
        raise _error(f"must be local or spark, got {show(value)}")
    return value


def _check_roc_auc(value: Any) -> str:
    if not isinstance(value, str) or value not in ("exact", "bounds"):
        raise _error(f"must be exact or bounds, got {show(value)}")
    return value


def _check_measured_on(value: Any) -> str:
    if not isinstance(value, str) or value not in ("this", "other"):
        raise _error(f"must be this or other, got {show(value)}")
    return value


Number = Annotated[
    float,
    BeforeValidator(_check_number),
    WithJsonSchema(_placeholder_text({"type": "number"}, _FLOAT_TEXT)),
]
Flag = Annotated[
    bool,
    BeforeValidator(_check_flag),
    WithJsonSchema(_placeholder_text({"type": "boolean"}, "|".join(_TRUE + _FALSE))),
]
Text = Annotated[str, BeforeValidator(_check_text), WithJsonSchema({"type": "string"})]
FilePath = Annotated[str, BeforeValidator(_check_path), WithJsonSchema({"type": "string", "minLength": 1})]
Names = Annotated[
    list[str],
    BeforeValidator(_check_names),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
Severity = Annotated[
    str,
    BeforeValidator(_check_text),
    WithJsonSchema({"enum": ["error", "warning", "info"]}),
]
MeasuredOn = Annotated[str, BeforeValidator(_check_measured_on), WithJsonSchema({"enum": ["this", "other"]})]
Engine = Annotated[str, BeforeValidator(_check_engine), WithJsonSchema({"enum": ["local", "spark"]})]
RocAuc = Annotated[str, BeforeValidator(_check_roc_auc), WithJsonSchema({"enum": ["exact", "bounds"]})]
Epochs = Annotated[int, BeforeValidator(_integer_check(1, MAX_EPOCHS)), _integer_schema(1, MAX_EPOCHS)]
BatchSize = Annotated[
    int, BeforeValidator(_integer_check(1, MAX_BATCH_SIZE)), _integer_schema(1, MAX_BATCH_SIZE)
]
Seed = Annotated[int, BeforeValidator(_integer_check(0, MAX_SEED)), _integer_schema(0, MAX_SEED)]
Seeds = Annotated[int, BeforeValidator(_integer_check(1, MAX_SEEDS)), _integer_schema(1, MAX_SEEDS)]
Workers = Annotated[int, BeforeValidator(_integer_check(1, MAX_WORKERS)), _integer_schema(1, MAX_WORKERS)]
SampleCount = Annotated[
    int, BeforeValidator(_integer_check(1, MAX_REPORTED_N)), _integer_schema(1, MAX_REPORTED_N)
]


# --- sections ----------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogSection(_Section):
    """Where the audit is logged as MLflow runs."""

    enabled: Flag = Field(True, description="Log MLflow runs (false: local report folders only).")
    tracking_uri: Text | None = Field(
        None, description="MLflow tracking URI; default MLFLOW_TRACKING_URI, else ./mlflow.db."
    )
    experiment: Text = Field("lossaudit", description="MLflow experiment name.")


class RetrainSection(_Section):
    """Prove the findings' fix by retraining the original and the fixed head alike."""

    train: FilePath = Field(description="Training data, in the formats 'data' takes.")
    epochs: Epochs = Field(10, description="Epochs per retrain.")
    batch_size: BatchSize = Field(32, description="Retrain batch size.")
    seed: Seed = Field(0, description="First seed (keras.utils.set_random_seed).")
    seeds: Seeds = Field(
        3, description="Seeds each head is retrained with: the fix is proven only beyond their spread."
    )


class ReportedSection(_Section):
    """Numbers a past run stated (metric name -> value), and where they were measured."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Number]

    from_source_run: Flag = Field(
        True, description="Also read the numbers logged on the model's MLflow source run."
    )
    measured_on: MeasuredOn = Field(
        "this",
        description="'this' eval set (judged to the last digit) or 'other' data (judged by sampling).",
    )
    n: SampleCount | None = Field(
        None, description="Samples the numbers were measured on, with measured_on: other."
    )

    @model_validator(mode="after")
    def _n_goes_with_other(self) -> ReportedSection:
        if self.n is not None and self.measured_on != "other":
            raise _error("'n' goes with measured_on: other (this eval set's size is known)")
        return self

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.__pydantic_extra__ or {})


def _check_retrain(value: Any) -> Any:
    if value is True:
        raise _error("needs at least 'train: PATH'")
    return None if value is False else value


class AuditSection(_Section):
    """One model to audit."""

    name: Text | None = Field(None, description="Unique name; default: the model file's stem.")
    model: FilePath = Field(
        description="A .keras/.h5 file, models:/name/1, models:/name@alias or runs:/id/path."
    )
    data: FilePath = Field(description="Eval data: .npz with x and y, or a table with label_columns.")
    label_columns: Names | None = Field(None, description="Label column(s) of a table (globs allowed).")
    reported: ReportedSection | None = Field(
        None, description="Numbers a past run stated, e.g. {accuracy: 0.9979}; judged against the audit."
    )
    retrain: Annotated[RetrainSection | None, BeforeValidator(_check_retrain)] = Field(
        None, description="Prove the findings' fix by retraining (needs 'train')."
    )
    unsafe: Flag = Field(False, description="Allow Lambda layers (runs their code).")
    engine: Engine | None = Field(
        None, description="Where rows are read, predicted and counted: local or spark (default: the file's)."
    )
    master: Text | None = Field(None, description="Spark master for engine: spark (default: the file's).")
    roc_auc: RocAuc = Field(
        "exact",
        description="exact: keep every prediction to rank the scores; bounds: fold each batch into counts "
        "and keep none (ROC-AUC bounded from score histograms). On Spark, exact up to 200,000 rows.",
    )


class RegistrySection(_Section):
    """Which registered models are audited, and how."""

    name: Text | None = Field(None, description="Registered model name or glob; default: every model.")
    alias: Text | None = Field(None, description="Audit only the version with this alias.")
    filter: Text | None = Field(None, description="An MLflow search filter on model versions.")
    workers: Workers = Field(
        1, description="Worker processes (engine: spark: versions audited at once, above 1)."
    )
    force: Flag = Field(False, description="Re-audit versions already audited with this data and rules.")
    promote_alias: Text | None = Field(
        None, description="Move this alias to each model's newest passing version."
    )
    data: dict[Text, FilePath] | None = Field(
        None, description="Registered model name (or glob) -> eval data path."
    )
    label_columns: Names | None = Field(None, description="Label column(s) of table eval data.")


class _PipelineBase(_Section):
    name: Text | None = Field(None, description="Pipeline name; default: the file's stem.")
    out: FilePath = Field("lossaudit-reports", description="Folder of the local report folders.")
    log: LogSection | None = Field(None, description="MLflow logging.")
    # Rule configuration (as in [tool.lossaudit]); values are judged by RuleConfig.
    select: Names | None = Field(None, description="Rule codes or prefixes to run (ALL: every rule).")
    ignore: Names | None = Field(None, description="Rule codes or prefixes to silence.")
    severity: dict[Text, Severity] | None = Field(None, description="Rule code -> severity.")
    fail_on: Severity | None = Field(None, description="Lowest finding severity that fails.")
    alpha: Number | None = Field(None, description="Significance level for numbers measured on other data.")
    tolerance: Number | None = Field(None, description="Absolute tolerance for matching a reported number.")


class AuditPipeline(_PipelineBase):
    """``kind: audit``: audit one or more models (nested MLflow runs when several)."""

    kind: Literal["audit"]
    thresholds: dict[Text, Number] | None = Field(None, description="Recomputed metric floors.")
    engine: Engine = Field("local", description="Where rows are read, predicted and counted: local or spark.")
    master: Text | None = Field(
        None, description="Spark master for engine: spark; default SPARK_MASTER, else local[*]."
    )
    audits: list[AuditSection] = Field(min_length=1, description="The models to audit.")


class DemoPipeline(_PipelineBase):
    """``kind: demo``: the seed scenarios."""

    kind: Literal["demo"]
    scenarios: Names | None = Field(None, description="'all' (the default) or scenario names.")


class RegistryPipeline(_PipelineBase):
    """``kind: registry``: scheduled audits over the MLflow Model Registry."""

    kind: Literal["registry"]
    engine: Engine = Field(
        "local", description="Where the versions are audited: local (worker processes) or spark (executors)."
    )
    master: Text | None = Field(
        None, description="Spark master for engine: spark; default SPARK_MASTER, else local[*]."
    )
    registry: RegistrySection | None = Field(None, description="Which registered models, and how.")


PipelineFile = Annotated[AuditPipeline | DemoPipeline | RegistryPipeline, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[AuditPipeline | DemoPipeline | RegistryPipeline] = TypeAdapter(PipelineFile)
_MODELS: dict[str, type[_PipelineBase]] = {
    "audit": AuditPipeline,
    "demo": DemoPipeline,
    "registry": RegistryPipeline,
}


# --- validation --------------------------------------------------------------------------------


def validate_pipeline(data: Any, source: str) -> AuditPipeline | DemoPipeline | RegistryPipeline:
    """The typed pipeline of a loaded file, or one :class:`BadInputError` line prefixed with
    ``source`` (e.g. ``pipeline p.yaml``) naming the key path of the first problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: the file must be a mapping of keys, got {show(data)}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise BadInputError(f"{source}: {_describe(exc, data)}") from None
    except RecursionError:
        raise BadInputError(f"{source}: the file is nested too deeply") from None


def key_path(loc: Sequence[Any]) -> str:
    """``("audits", 0, "retrain", "epochs")`` -> ``audits[0].retrain.epochs``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{_key(part)}" if out else _key(part)
    return out


def _key(name: Any) -> str:
    """A key as written, or quoted when it would not read as one (empty, blank, a newline)."""
    text = str(name)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _describe(exc: ValidationError, data: Mapping[str, Any]) -> str:
    errors = exc.errors(include_url=False)
    kind = data.get("kind")
    first = errors[0]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"'kind' must be one of {', '.join(KINDS)}, got {show(kind)}"
    # Errors inside a kind's model are located under the tag ("audit", ...): drop it.
    located = [(tuple(e["loc"][1:]), e) for e in errors]
    unknown = [(loc, e) for loc, e in located if e["type"] == "extra_forbidden"]
    if unknown:
        # All unknown keys of the first mapping that has some, in one line.
        parent = unknown[0][0][:-1]
        keys = [_key(loc[-1]) for loc, _ in unknown if loc[:-1] == parent]
        message = _unknown_message(parent, keys, str(kind))
        problems = len(located) - len(keys)
    else:
        loc, error = located[0]
        message = _one_error(loc, error, str(kind))
        problems = len(located) - 1
    if problems > 0:
        message += f" (and {problems} more problem{'s' if problems > 1 else ''})"
    return message


def _unknown_message(parent: tuple[Any, ...], keys: list[str], kind: str) -> str:
    if not parent:
        elsewhere = [k for k in keys if any(k in model.model_fields for model in _MODELS.values())]
        if elsewhere:
            owners = sorted(
                {name for k in elsewhere for name, model in _MODELS.items() if k in model.model_fields}
            )
            return (
                f"key(s) {', '.join(elsewhere)} do not apply to kind {kind!r} "
                f"(they belong to kind {' or '.join(owners)})"
            )
        return f"unknown key(s): {', '.join(keys)}"
    return f"unknown key(s) in {key_path(parent)}: {', '.join(keys)}"


_TYPE_WORDS: dict[str, str] = {
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
}


def _one_error(loc: tuple[Any, ...], error: Any, kind: str) -> str:
    kind_of = error["type"]
    if loc == ("audits",) and kind_of != "lossaudit":
        needs = "kind 'audit' needs a non-empty 'audits' list"
        return needs if kind_of == "missing" else f"{needs}, got {show(error.get('input'))}"
    if kind_of == "missing":
        parent = key_path(loc[:-1]) or f"kind {kind!r}"
        return f"{parent} needs '{loc[-1]}'"
    if loc and loc[-1] == "[key]":
        return f"{key_path(loc[:-2]) or 'the file'}: key {show(loc[-2])}: expected a string"
    if kind_of == "lossaudit":
        message = str(error["msg"])
    elif kind_of in _TYPE_WORDS:
        message = f"{_TYPE_WORDS[kind_of]}, got {show(error.get('input'))}"
    else:
        text = str(error["msg"])
        message = text[:1].lower() + text[1:]
    path = key_path(loc)
    return f"{path}: {message}" if path else message


# --- JSON Schema -------------------------------------------------------------------------------


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema of a pipeline file (as committed at ``docs/pipeline.schema.json``)."""
    body = _ADAPTER.json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "lossaudit pipeline file",
        "description": (
            "A pipelines/*.yaml file that `lossaudit run` executes (kind audit, demo or registry). "
            "${VAR} and ${VAR:-default} in values are expanded from the environment first."
        ),
        **body,
    }


def schema_text() -> str:
    return json.dumps(pipeline_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lossaudit.pipeline.schema [PATH]``: print the schema, or write it to PATH."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = schema_text()
    if args:
        from pathlib import Path

        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
