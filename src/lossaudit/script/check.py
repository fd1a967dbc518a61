"""``lossaudit check PATH...``: the rule catalogue on the models a training script builds.

Each file is parsed (never imported or run), followed by :class:`~.interp.Interpreter`, and every
model it compiles is judged by the core rules (:func:`lossaudit.core.findings.run_rules`) as a
:class:`~lossaudit.core.head.HeadSpec` and, where the code proves it, the label encoding. Under
each Keras family the script may run under (:mod:`.family`) the rules run once; a finding is
reported when every family gives it. Each finding points at the call that causes it: the
``compile`` for the loss, from_logits and metrics; the layer for the activation and units.

Precision first: a head, loss or label encoding the code does not show is unknown, and unknown
facts make no finding. On top of the catalogue's own conditions, source code needs two more:
a regression loss (LA305) is judged only on a softmax head or with labels the code shows to be
class labels (a sigmoid output with MSE may be an autoencoder), and a metric name is not called
unknown (LA108) when a legacy Keras, with names of its own, may run the script.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lossaudit.core.catalogue import RULES
from lossaudit.core.config import RuleConfig
from lossaudit.core.findings import AuditFacts, Finding, SourceEdit, SourceLocation, run_rules, verdict
from lossaudit.core.head import MAX_UNITS, HeadSpec, KerasFamily, LossSpec
from lossaudit.core.labels import LabelEncoding, LabelEvidence, LabelProblem
from lossaudit.core.report import AuditReport
from lossaudit.errors import BadInputError
from lossaudit.script import edits
from lossaudit.script.family import Family, PinFinder, Pins, decide
from lossaudit.script.interp import BudgetExceeded, Check, Interpreter, Labels, Site, Step, Tensor
from lossaudit.script.source import CodeUnit, Notice, SourceFile, collect_files, read_source

LABEL_CODES = frozenset({"LA105", "LA106", "LA201", "LA202", "LA203", "LA204", "LA205", "LA206"})
"""Rules that read the labels: their messages say where in the code the encoding comes from."""


@dataclass
class FileResult:
    findings: list[Finding] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    not_followed: int = 0
    notices: list[Notice] = field(default_factory=list)
    suppressed: int = 0
    parsed: bool = False


def check_paths(
    paths: Sequence[Path],
    *,
    config: RuleConfig | None = None,
    keras_family: KerasFamily | None = None,
    jobs: int | None = None,
) -> AuditReport:
    """Check every Python file and notebook under ``paths``; one report for all of them.

    ``jobs``: processes to check in (default: one per core, up to :data:`MAX_JOBS`, for
    :data:`PARALLEL_FROM` files or more, where ``fork`` is available; 1 checks in this process).

    Raises :class:`BadInputError` for a path that does not exist (or is a model or data file).
    Files that cannot be read or parsed are listed in ``context["not_parsed"]``; the rest are
    checked.
    """
    rules = config if config is not None else RuleConfig()
    files = collect_files(paths)
    findings: list[Finding] = []
    models: list[dict[str, Any]] = []
    notices: list[Notice] = []
    suppressed = not_followed = parsed = 0
    for order, result in enumerate(_results(files, keras_family, jobs)):
        notices.extend(result.notices)
        models.extend(result.models)
        suppressed += result.suppressed
        not_followed += result.not_followed
        parsed += int(result.parsed)
        findings.extend(replace(f, evidence={**f.evidence, "_order": order}) for f in result.findings)
    findings.sort(key=_finding_order)
    kept = tuple(
        replace(f, evidence={k: v for k, v in f.evidence.items() if k != "_order"}) for f in findings
    )
    judged = rules.apply(kept)
    context: dict[str, Any] = {
        "checked": "scripts",
        "paths": [str(p) for p in paths],
        "files": len(files),
        "files_parsed": parsed,
        "models": models,
        "models_not_followed": not_followed,
        "suppressed": suppressed,
        "not_parsed": [n.to_dict() for n in notices],
    }
    return AuditReport(
        command="check",
        head=None,
        findings=judged,
        verdict=verdict(judged, rules.fail_on),
        fail_on=rules.fail_on,
        config=rules.to_dict(),
        context=context,
    )


MAX_JOBS = 4
PARALLEL_FROM = 64
"""Fewer files are checked in this process: starting workers costs more than they save."""


def _check_file(path: Path, pins: PinFinder, keras_family: KerasFamily | None) -> FileResult:
    return check_source(read_source(path), pins=pins.for_file(path), keras_family=keras_family)


def _check_chunk(files: list[Path], keras_family: KerasFamily | None) -> list[FileResult]:
    pins = PinFinder()
    return [_check_file(path, pins, keras_family) for path in files]


def _results(files: list[Path], keras_family: KerasFamily | None, jobs: int | None) -> list[FileResult]:
    """Each file's result, in order; in worker processes when there are many files."""
    import multiprocessing
    import os

    workers = jobs if jobs is not None else min(os.cpu_count() or 1, MAX_JOBS)
    fork = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or len(files) < PARALLEL_FROM or not fork:
        return _check_chunk(files, keras_family)
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(files) // (workers * 4))  # a few chunks per worker, in order
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = list(pool.map(_check_chunk, chunks, [keras_family] * len(chunks)))
    except (OSError, RuntimeError):  # no processes here (a sandbox): check in this one
        return _check_chunk(files, keras_family)
    return [result for chunk in done for result in chunk]


def _finding_order(finding: Finding) -> tuple[int, int, int, str]:
    location = finding.location
    order = int(finding.evidence.get("_order", 0))
    if location is None:
        return order, 0, 0, finding.code
    return order, location.line, location.column, finding.code


def check_source(source: SourceFile, *, pins: Pins, keras_family: KerasFamily | None = None) -> FileResult:
    """The findings on one file (before the rule configuration is applied)."""
    result = FileResult(notices=list(source.notices))
    if not source.units:
        result.parsed = not source.notices
        return result
    trees: list[ast.Module] = []
    units: list[CodeUnit] = []
    for unit in source.units:
        try:
            trees.append(ast.parse(unit.text, filename=source.display))
            units.append(unit)
        except SyntaxError as exc:
            line, column = unit.file_position(exc.lineno or 1, exc.offset or 1)
            where = f" (cell {unit.cell})" if unit.cell is not None else ""
            result.notices.append(Notice(source.display, f"not parsed{where}: {exc.msg}", line, column))
        except (ValueError, RecursionError, MemoryError) as exc:
            result.notices.append(Notice(source.display, f"not parsed: {type(exc).__name__}"))
    if not trees:
        return result
    result.parsed = True
    interpreter = Interpreter(trees, [unit.lines for unit in units])
    try:
        checks = interpreter.run()
    except (BudgetExceeded, RecursionError):
        result.notices.append(Notice(source.display, "too complex to follow: not checked"))
        result.parsed = False
        return result
    judge = _Judge(source, units, interpreter, pins, keras_family)
    seen: set[tuple[str, int, int]] = set()
    for check in checks:
        for finding in judge.findings(check, result):
            assert finding.location is not None
            key = (finding.code, finding.location.line, finding.location.column)
            if key not in seen:
                seen.add(key)
                result.findings.append(finding)
    return result


class _Judge:
    def __init__(
        self,
        source: SourceFile,
        units: list[CodeUnit],
        interpreter: Interpreter,
        pins: Pins,
        override: KerasFamily | None,
    ) -> None:
        self.source = source
        self.units = units
        self.interpreter = interpreter
        self.pins = pins
        self.override = override
        self.signals = [
            f"{why} at {self._line_text(unit, line)}" for why, unit, line in interpreter.legacy_signals
        ]

    def _line_text(self, unit: int, line: int) -> str:
        code = self.units[unit]
        file_line, _ = code.file_position(line, 1)
        return f"line {file_line}" if code.cell is None else f"cell {code.cell}, line {line}"

    # -- locations --

    def location(self, site: Site) -> SourceLocation:
        unit = self.units[site.unit]
        node = site.node
        line = node.lineno  # type: ignore[attr-defined]
        end_line = node.end_lineno or line  # type: ignore[attr-defined]
        column = unit.column(line, node.col_offset)  # type: ignore[attr-defined]
        end_column = unit.column(end_line, node.end_col_offset or 0)  # type: ignore[attr-defined]
        file_line, file_column = unit.file_position(line, column)
        file_end_line, file_end_column = unit.file_position(end_line, end_column)
        return SourceLocation(
            self.source.display,
            file_line,
            file_column,
            file_end_line,
            file_end_column,
            cell=unit.cell,
            cell_line=line if unit.cell is not None else None,
        )

    # -- judging one check --

    def findings(self, check: Check, result: FileResult) -> list[Finding]:
        output = check.output
        if not isinstance(output, Tensor) or output.units is None or output.dense is None:
            result.not_followed += 1
            return []
        head = self._head(check, output)
        if head is None:
            result.not_followed += 1
            return []
        packages = {p for p in (*check.model.packages, output.package) if p}
        family = decide(packages, self.pins, self.signals, self.override)
        labels = self._labels(check, head.units)
        where = check.compile.site if check.compile is not None else output.dense
        result.models.append(self._summary(where, head, labels, family))
        out: list[Finding] = []
        for finding in self._judged(head, labels, family):
            site = self._site(finding, check, output)
            unit = self.units[site.unit]
            node = site.node
            first, last = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
            if unit.suppressed(finding.code, first, last):
                result.suppressed += 1
                continue
            location = self.location(site)
            suggestions = self._suggestions(finding, check, output, head, site)
            out.append(
                replace(
                    finding,
                    message=self._message(finding, labels, family),
                    evidence={
                        **finding.evidence,
                        "keras_family": family.describe(),
                        "keras_family_from": family.reason,
                        **({"labels_from": labels.origin} if labels is not None and labels.origin else {}),
                        "source_line": unit.lines[first - 1].strip() if first <= len(unit.lines) else "",
                    },
                    location=location,
                    suggestions=suggestions,
                )
            )
        return out

    def _head(self, check: Check, output: Tensor) -> HeadSpec | None:
        units = output.units
        if units is None or not 1 <= units <= MAX_UNITS:
            return None
        compiled = check.compile
        loss: LossSpec | None = None
        metrics: tuple[str, ...] = ()
        if compiled is not None and compiled.loss is not None:
            value = compiled.loss
            if 0.0 <= value.label_smoothing < 1.0:
                loss = LossSpec(value.name, value.from_logits, value.label_smoothing)
            if loss is not None and compiled.complete:
                metrics = tuple(m.name for m in compiled.metrics if m.judged)
        try:
            return HeadSpec(
                units=units,
                activation_chain=tuple(step.name for step in output.chain),
                loss=loss,
                metrics=metrics,
                source=f"script:{self.source.display}",
            )
        except BadInputError:
            return None

    def _labels(self, check: Check, units: int) -> LabelEvidence | None:
        forms = {(lab.encoding, lab.classes, lab.column) for lab in check.labels}
        if len(forms) != 1:
            return None
        labels = check.labels[0]
        return label_evidence(labels, units)

    def _judged(self, head: HeadSpec, labels: LabelEvidence | None, family: Family) -> list[Finding]:
        by_family: list[dict[str, Finding]] = []
        for candidate in family.ordered:
            facts = AuditFacts(head=head.with_changes(keras_family=candidate), labels=labels)
            found: dict[str, Finding] = {}
            for finding in run_rules(RULES, facts):
                found.setdefault(finding.code, finding)
            by_family.append(found)
            if not found:  # nothing all families agree on
                return []
        if not by_family:
            return []
        agreed = [f for code, f in by_family[0].items() if all(code in other for other in by_family[1:])]
        legacy_possible = KerasFamily.LEGACY in family.candidates
        out: list[Finding] = []
        for finding in agreed:
            if finding.code == "LA305" and labels is None and head.activation != "softmax":
                continue
            if finding.code == "LA108" and finding.evidence.get("kind") == "metric" and legacy_possible:
                continue
            out.append(finding)
        return out

    def _output_step(self, output: Tensor) -> Step:
        for step in reversed(output.chain):
            if step.name != "linear":
                return step
        return output.chain[0]

    def _site(self, finding: Finding, check: Check, output: Tensor) -> Site:
        code = finding.code
        softmax = next((s for s in output.chain if s.name == "softmax"), None)
        if code in ("LA102", "LA303") and softmax is not None:
            return softmax.site
        if code in ("LA104", "LA304"):
            return self._output_step(output).site
        if code == "LA108" and finding.evidence.get("kind") == "activation":
            name = finding.evidence.get("name")
            step = next((s for s in output.chain if s.name == name), None)
            if step is not None:
                return step.site
        if code in ("LA203", "LA204") and output.dense is not None:
            return output.dense
        if check.compile is not None:
            return check.compile.site
        assert output.dense is not None
        return output.dense

    def _message(self, finding: Finding, labels: LabelEvidence | None, family: Family) -> str:
        message = finding.message
        if finding.code in LABEL_CODES and labels is not None and labels.origin:
            message += f" The labels' encoding is known from the code: {labels.origin}."
        if len(family.candidates) == 1 and _family_specific(finding.code):
            message += f" Keras family {family.describe()}: {family.reason}."
        return message

    def _summary(
        self, site: Site, head: HeadSpec, labels: LabelEvidence | None, family: Family
    ) -> dict[str, Any]:
        location = self.location(site)
        return {
            **location.to_dict(),
            "units": head.units,
            "activation": head.activation,
            "activation_chain": list(head.activation_chain),
            "loss": None if head.loss is None else head.loss.name,
            "from_logits": head.from_logits,
            "metrics": list(head.metrics),
            "labels": None if labels is None else labels.encoding.value,
            "labels_from": None if labels is None else labels.origin,
            "keras_family": family.describe(),
            "keras_family_from": family.reason,
        }

    # -- the fix as code --

    def _suggestions(
        self, finding: Finding, check: Check, output: Tensor, head: HeadSpec, flagged: Site
    ) -> tuple[SourceEdit, ...]:
        changes: dict[int, tuple[Site, list[edits.Change]]] = {}

        def add(site: Site, change: edits.Change) -> None:
            changes.setdefault(id(site.node), (site, []))[1].append(change)

        compiled = check.compile
        fix = finding.head_fix
        if finding.code == "LA303":
            first = next((s for s in output.chain if s.name == "softmax"), None)
            if first is not None and first.kind == "dense" and first.arg is not None:
                add(first.site, edits.replace(first.arg, "None"))  # Dense(K) then one Softmax
        elif fix is not None:
            if compiled is not None and (fix.loss is not None or fix.from_logits is not None):
                new = fix.apply(head).loss
                if new is not None and new != head.loss and compiled.loss_arg is not None:
                    unit = self.units[compiled.site.unit]
                    prefix = self.interpreter.keras_prefix("losses")
                    add(
                        compiled.site,
                        edits.replace(
                            compiled.loss_arg, edits.loss_text(unit, compiled.loss_arg, new, prefix)
                        ),
                    )
            if compiled is not None and fix.metrics is not None and isinstance(compiled.site.node, ast.Call):
                unit = self.units[compiled.site.unit]
                for change in edits.metrics_changes(
                    unit, compiled.site.node, compiled.metrics_arg, fix.metrics
                ):
                    add(compiled.site, change)
            if fix.activation is not None and fix.activation != head.activation:
                self._activation_change(output, fix.activation, add)
            if fix.units is not None and fix.units != head.units and output.units_arg is not None:
                assert output.dense is not None
                add(output.dense, edits.replace(output.units_arg, str(fix.units)))
        out: list[SourceEdit] = []
        for site, site_changes in sorted(changes.values(), key=lambda sc: sc[0].node is not flagged.node):
            edit = edits.apply(self.units[site.unit], self.location(site), site_changes)
            if edit is not None:
                out.append(edit)
        return tuple(out)

    def _activation_change(self, output: Tensor, activation: str, add: Any) -> None:
        step = self._output_step(output)
        unit = self.units[step.site.unit]
        if step.kind in ("dense", "layer") and step.arg is not None:
            add(step.site, edits.replace(step.arg, edits.quoted(unit, step.arg, activation)))
        elif step.kind == "dense" and isinstance(step.site.node, ast.Call):
            add(
                step.site,
                edits.add_keyword(step.site.node, f"activation={edits.quoted(unit, None, activation)}"),
            )
        elif step.kind == "function" and isinstance(step.arg, ast.Attribute):
            add(step.site, edits.replace(step.arg, f"{edits.segment(unit, step.arg.value)}.{activation}"))


def _family_specific(code: str) -> bool:
    from lossaudit.core.catalogue import RULES_BY_CODE

    rule = RULES_BY_CODE.get(code)
    return rule is not None and len(rule.families) < len(KerasFamily)


def label_evidence(labels: Labels, units: int) -> LabelEvidence:
    """What labels known from code say, against a head of ``units`` (no sample count)."""
    origin = labels.origin
    if labels.encoding in ("one_hot", "multi_hot"):
        width = labels.classes or units
        encoding = LabelEncoding.ONE_HOT if labels.encoding == "one_hot" else LabelEncoding.MULTI_HOT
        return LabelEvidence(encoding, (0, width), 0, width, origin=origin)
    shape = (0, 1) if labels.column else (0,)
    k = labels.classes
    if k is not None and (k > units if units > 1 else k > 2):
        if units == 1:
            reason = f"labels go up to {k - 1} ({k} classes) but the head has 1 unit"
        else:
            reason = f"largest label index is {k - 1} but the head has {units} units (indices 0..{units - 1})"
        return LabelEvidence(
            LabelEncoding.INVALID,
            shape,
            0,
            k,
            problem=LabelProblem.OUT_OF_RANGE,
            reason=reason,
            origin=origin,
        )
    if units <= 2 or labels.encoding == "binary":
        return LabelEvidence(
            LabelEncoding.BINARY, shape, 0, max(units, 2), distinct_values=(0.0, 1.0), origin=origin
        )
    return LabelEvidence(LabelEncoding.INDEX, shape, 0, units, origin=origin)
