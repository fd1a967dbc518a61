"""``lossaudit demo``: reproduce every seed scenario on bundled data and show what lossaudit finds.

Imports only Typer at top level; Keras, TensorFlow and scikit-learn load inside the command.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from lossaudit.cli.common import JsonOpt, bad_input, guarded
from lossaudit.errors import EXIT_FINDINGS, EXIT_PASS

SCENARIO_HELP = (
    "Scenario to run (repeat for several; default all): bce-softmax-multiclass, one-unit-cce, "
    "one-unit-softmax, label-loss-mismatch, multi-label, from-logits-mismatch."
)


def demo_verdict_line(
    reproduced: int, total: int, failing: int, verdict: str, seconds: float | None = None
) -> str:
    """The demo's verdict in words a newcomer reads right: a scenario passes when its audit finds
    the fault it shows, so the demo passes while most of its models fail their audit."""
    took = "" if seconds is None else f" in {seconds:.1f} s"
    return (
        f"{reproduced} of {total} scenario(s) reproduced the failure they show{took}: demo {verdict}. "
        f"{failing} of the {total} audited model(s) failed their audit, on purpose: a scenario passes "
        "when its audit finds the fault it is built to show."
    )


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command(name="demo")(demo)


def demo(
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help=SCENARIO_HELP)] = None,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, max=200, help="Epochs for every model (default: each scenario's own)."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for weights and shuffling (keras.utils.set_random_seed).")
    ] = 0,
    legacy: Annotated[
        bool,
        typer.Option(
            "--legacy/--no-legacy",
            help="Reproduce legacy 'accuracy' with tf-keras in TF1 graph mode (a child process); "
            "--no-legacy audits the recorded run instead.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Reproduce the seed scenarios: train small Keras models on scikit-learn's bundled data, audit
    them, retrain with the proposed fix.

    Exit 0 when every scenario reproduced the failure it is meant to show (finding codes and
    numbers), 1 when one did not, 2 for an unknown scenario.
    """

    def body() -> int:
        from lossaudit.demo.harness import DemoSettings
        from lossaudit.demo.render import demo_document, render_scenario
        from lossaudit.demo.scenarios import SCENARIO_NAMES, run_scenarios

        names = list(scenario) if scenario else list(SCENARIO_NAMES)
        unknown = [n for n in names if n not in SCENARIO_NAMES]
        if unknown:
            raise bad_input(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIO_NAMES)}")
        settings = DemoSettings(epochs=epochs, seed=seed, legacy=legacy)
        started = time.perf_counter()

        from lossaudit.cli import console

        # A live line on stderr in a terminal; nothing in a pipe or with --json.
        with console.progress("demo") as update:
            results = run_scenarios(names, settings, progress=None if as_json else update)
        seconds = time.perf_counter() - started
        document = demo_document(results, seconds)
        if as_json:
            typer.echo(json.dumps(document, indent=2))
        else:
            for result in results:
                typer.echo(render_scenario(result))
                typer.echo("")
            console.table(
                ("scenario", "reproduced?", "findings", "audited model", "seconds"),
                [
                    (
                        r.name,
                        "yes" if r.reproduced else "no",
                        ", ".join(r.codes) or "none",
                        r.model_verdict,
                        f"{r.seconds:.1f}",
                    )
                    for r in results
                ],
                ["pass" if r.reproduced else "error" for r in results],
            )
            failing = sum(1 for r in results if r.model_verdict == "fail")
            verdict = demo_verdict_line(
                document["reproduced"], document["scenarios_run"], failing, document["verdict"], seconds
            )
            typer.echo(
                f"{verdict} Nothing was logged; `lossaudit run pipelines/demo.yaml` logs each scenario "
                "as an MLflow run."
            )
        return EXIT_PASS if document["verdict"] == "pass" else EXIT_FINDINGS

    guarded(body)
