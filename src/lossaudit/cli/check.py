"""``lossaudit check`` and ``lossaudit compare``: the rules on a head, and reported numbers against
recomputed ones, without running a model.

Imports only Typer and :mod:`lossaudit.cli.common` at top level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lossaudit.cli.common import (
    ConfigOpt,
    Family,
    FormatOpt,
    IgnoreOpt,
    JsonOpt,
    LabelColumnOpt,
    MeasuredOn,
    OutputFormat,
    ReportedNOpt,
    ReportedOnOpt,
    RuleFailOnOpt,
    SelectOpt,
    bad_input,
    emit,
    emit_as,
    guarded,
    parse_reported,
    rule_config,
)
from lossaudit.errors import EXIT_BAD_INPUT, EXIT_PASS


def check(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Training scripts, notebooks or folders of them, read as source code (never "
            "imported or run); instead of --model or the head flags.",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    units: Annotated[int | None, typer.Option(help="Output units of the last layer.")] = None,
    activation: Annotated[
        str | None, typer.Option(help="Last activation: softmax, sigmoid, linear, relu, ...")
    ] = None,
    loss: Annotated[str | None, typer.Option(help="Loss name, e.g. categorical_crossentropy.")] = None,
    from_logits: Annotated[
        bool, typer.Option("--from-logits", help="The loss has from_logits=True.")
    ] = False,
    label_smoothing: Annotated[float, typer.Option(help="The loss's label_smoothing.")] = 0.0,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="Declared metric (repeat), e.g. accuracy.")
    ] = None,
    keras_family: Annotated[
        Family | None,
        typer.Option(
            help="Keras that compiled the model (decides what 'accuracy' means); default keras3, or "
            "what --spec/--model says, or for scripts what their imports, Keras 1 arguments and the "
            "project's pinned versions say; this overrides."
        ),
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Head spec file (YAML or JSON).")] = None,
    model: Annotated[
        Path | None, typer.Option(help="A saved .keras or .h5 model, read statically (no TensorFlow).")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels: .npy, .npz (key y), .csv, .parquet.")] = None,
    label_column: LabelColumnOpt = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    config: ConfigOpt = None,
    fail_on: RuleFailOnOpt = None,
    as_json: JsonOpt = False,
    output_format: FormatOpt = None,
) -> None:
    """Check a head (and optionally its labels) against the rule catalogue, without a model run:
    the head of training scripts and notebooks (PATH...), of a saved --model, or given by flags.

    Scripts: each finding names file, line and column of the compile or layer that causes it,
    with the fix as code for that line; '# lossaudit: ignore[LA103]' on the line silences it.
    Exit 2 also when a file could not be parsed (and nothing failed)."""

    def body() -> int:
        output = _output(output_format, as_json)
        rules = rule_config(config, select, ignore, fail_on)
        if paths:
            return _check_scripts(
                paths,
                rules,
                keras_family,
                output,
                others=(units, activation, loss, spec, model, labels, metric, from_logits, label_smoothing),
            )
        from lossaudit.core.audit import check as run_check

        head, context = _head_from_options(
            units, activation, loss, from_logits, label_smoothing, metric, keras_family, spec, model
        )
        y = None
        if labels is not None:
            from lossaudit.sources.files import load_labels

            y = load_labels(labels, label_column or ())
            context["labels_file"] = str(labels)
        report = run_check(head, y, context=context, config=rules)
        from lossaudit.pipeline.project_run import record_report

        record_report(report)  # under `mlflow run`: the project run's verdict and report
        return emit_as(report, output)

    guarded(body)


def _output(output_format: OutputFormat | None, as_json: bool) -> OutputFormat:
    if as_json and output_format not in (None, OutputFormat.json):
        raise bad_input(f"--json cannot be combined with --format {output_format}")
    return OutputFormat.json if as_json else output_format or OutputFormat.text


def _check_scripts(
    paths: list[Path],
    rules: Any,
    keras_family: Family | None,
    output: OutputFormat,
    others: tuple[Any, ...],
) -> int:
    """``lossaudit check PATH...``: the rules on the models the scripts build."""
    if any(v not in (None, False, 0.0, []) for v in others):
        raise bad_input(
            "PATH... (training scripts) cannot be combined with --model, --spec, --labels or the "
            "head flags (--units, --activation, --loss, --from-logits, --label-smoothing, --metric)"
        )
    from lossaudit.core.head import KerasFamily
    from lossaudit.script.check import check_paths

    family = None if keras_family is None else KerasFamily(keras_family.value)
    report = check_paths(paths, config=rules, keras_family=family)
    code = emit_as(report, output, source=True)
    if code == EXIT_PASS and report.context.get("not_parsed"):
        return EXIT_BAD_INPUT
    return code


def _head_from_options(
    units: int | None,
    activation: str | None,
    loss: str | None,
    from_logits: bool,
    label_smoothing: float,
    metric: list[str] | None,
    keras_family: Family | None,
    spec: Path | None,
    model: Path | None,
) -> tuple[Any, dict[str, Any]]:
    from lossaudit.core.head import HeadSpec, KerasFamily

    sources = [s for s in (spec, model) if s is not None]
    if len(sources) > 1:
        raise bad_input("give either --spec or --model, not both")
    flags_given = any(v is not None for v in (units, activation, loss)) or bool(metric)
    flags_given = flags_given or from_logits or label_smoothing != 0.0
    if sources and flags_given:
        raise bad_input(
            "--units/--activation/--loss/--from-logits/--label-smoothing/--metric cannot be combined "
            "with --spec or --model"
        )
    if sources:
        if spec is not None:
            from lossaudit.sources.files import load_spec

            head, context = load_spec(spec), {"spec": str(spec)}
        else:
            from lossaudit.keras.static import read_model_file

            static = read_model_file(sources[0])
            head, context = static.require_head(), static.context()
        # A file cannot say whether tf-keras ran eagerly or in graph mode: the flag decides.
        if keras_family is not None:
            head = head.with_changes(keras_family=KerasFamily(keras_family.value))
            context["keras_family_from"] = "--keras-family"
        return head, context
    if units is None:
        raise bad_input("give the head with --units (and --activation, --loss), --spec or --model")
    head = HeadSpec.from_values(
        units=units,
        activation=activation,
        loss=loss,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        metrics=tuple(metric or ()),
        keras_family=(keras_family or Family.keras3).value,
    )
    return head, {}


def compare(
    labels: Annotated[Path, typer.Option(help="Labels file: .npy, .npz (key y), .csv, .parquet.")],
    predictions: Annotated[Path, typer.Option(help="Model outputs, shape (n, units): .npy, .npz, .csv.")],
    reported: Annotated[
        list[str] | None,
        typer.Option("--reported", help="A reported metric NAME=VALUE (repeat), e.g. accuracy=0.9979."),
    ] = None,
    reported_on: ReportedOnOpt = MeasuredOn.this,
    reported_n: ReportedNOpt = None,
    units: Annotated[int | None, typer.Option(help="Output units (default: the predictions' width).")] = None,
    from_logits: Annotated[
        bool, typer.Option("--from-logits", help="Predictions are logits, not probabilities.")
    ] = False,
    activation: Annotated[
        str | None, typer.Option(help="Last activation, if not implied by --from-logits.")
    ] = None,
    loss: Annotated[str | None, typer.Option(help="Loss the model was trained with.")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Declared metric (repeat).")] = None,
    keras_family: Annotated[Family, typer.Option(help="Keras that compiled the model.")] = Family.keras3,
    label_column: LabelColumnOpt = None,
    prediction_column: Annotated[
        list[str] | None, typer.Option("--prediction-column", help="Prediction column(s) of a table.")
    ] = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    config: ConfigOpt = None,
    fail_on: RuleFailOnOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute metrics from labels and predictions and attribute each reported number."""

    def body() -> int:
        rules = rule_config(config, select, ignore, fail_on)
        parsed = parse_reported(reported, reported_on, reported_n)
        from lossaudit.core.audit import audit_predictions, head_for_predictions
        from lossaudit.core.labels import LabelEncoding, detect_labels
        from lossaudit.sources.files import load_labels, load_predictions

        y = load_labels(labels, label_column or ())
        preds = load_predictions(predictions, prediction_column or ())
        width = preds.shape[1] if getattr(preds, "ndim", 0) == 2 else 1
        n_units = units if units is not None else width
        multi = detect_labels(y).encoding is LabelEncoding.MULTI_HOT
        head = head_for_predictions(
            n_units,
            from_logits=from_logits,
            multi_label=multi,
            activation=activation,
            loss=loss,
            metrics=tuple(metric or ()),
            keras_family=keras_family.value,
        )
        report = audit_predictions(
            head,
            y,
            preds,
            parsed,
            context={"labels_file": str(labels), "predictions_file": str(predictions)},
            config=rules,
        )
        return emit(report, as_json)

    guarded(body)


def register(app: typer.Typer) -> None:
    """Add ``check`` and ``compare`` to the ``lossaudit`` app."""
    app.command(name="check")(check)
    app.command(name="compare")(compare)
