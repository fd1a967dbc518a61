"""Merged statistics of the predictions, as Spark SQL aggregates: no prediction is collected.

Two jobs over the cached predictions. The first reads what the raw outputs show (rows holding NaN
or an infinity, their range, row sums): the facts the rules judge before any metric, and what
decides whether the outputs are probabilities (as :func:`lossaudit.core.metrics.read_outputs`
decides it). The second groups the rows by (true class, predicted class) and sums, per group, the
per-row terms of log loss and Brier score, top-k hits and the hits of every definition of
'accuracy': its groups are the confusion matrix, and their sums the rest.
:mod:`lossaudit.core.counts` turns them into the metrics and definitions a local audit computes.

ROC-AUC: Spark's ``BinaryClassificationEvaluator`` (exact, ``numBins=0``) for one-unit heads; for
multiclass and multi-label heads, scikit-learn on the rows collected to the driver up to
:data:`ROC_EXACT_ROWS` (exact); beyond that, no row is collected: one more aggregate counts each
class's (label's) scores in histogram bins (:func:`lossaudit.core.counts.logit_bins`, here in Spark
SQL), and :func:`lossaudit.core.counts.roc_auc_bounds` turns them into a lower and an upper bound
that the exact value cannot leave, reported as ``roc_auc_lower``/``roc_auc_upper`` and never as
``roc_auc`` unless they meet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lossaudit.core.counts import (
    ROC_LOGIT_SPAN,
    AccuracyCounts,
    MultiLabelCounts,
    MultiLabelHits,
    ProbabilitySums,
    RocAuc,
    SingleLabelCounts,
    bins_for,
    multilabel_roc_auc,
    roc_auc_bounds,
    roc_auc_of,
)
from lossaudit.core.head import HeadSpec
from lossaudit.core.labels import LabelEvidence
from lossaudit.core.metrics import TOP_K
from lossaudit.core.outputs import OutputSummary, Reading
from lossaudit.core.outputs import sums_to_one as rows_sum_to_one
from lossaudit.errors import BadInputError
from lossaudit.spark.data import LABEL
from lossaudit.spark.predict import PREDICTION

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    from pyspark.sql import DataFrame

ROC_EXACT_ROWS = 200_000
"""Up to this many rows, a multiclass or multi-label ROC-AUC is computed exactly on rows collected to
the driver; beyond it, bounded from score histograms."""
_EPS = 2.220446049250313e-16
"""float64 machine epsilon: scikit-learn's log loss clips probabilities to [eps, 1 - eps]."""
_P, _Y = f"`{PREDICTION}`", f"`{LABEL}`"
_NON_FINITE = f"exists({_P}, v -> isnan(v) OR abs(v) = double('Infinity'))"


def summarise_outputs(predicted: DataFrame, head: HeadSpec) -> OutputSummary:
    """One aggregate: rows, output width, non-finite rows, range and row sums of the finite rows.

    Raises
    ------
    BadInputError
        Outputs whose width is not the head's units (as a local audit says it).
    """
    from pyspark.sql import functions as F

    finite = f"NOT {_NON_FINITE}"
    row_sum = f"aggregate({_P}, 0D, (a, v) -> a + v)"
    row = predicted.agg(
        F.count(F.lit(1)).alias("n"),
        F.min(F.size(PREDICTION)).alias("w_min"),
        F.max(F.size(PREDICTION)).alias("w_max"),
        F.sum(F.expr(f"CAST({_NON_FINITE} AS INT)")).alias("bad"),
        F.min(F.expr(f"IF({finite}, array_min({_P}), NULL)")).alias("low"),
        F.max(F.expr(f"IF({finite}, array_max({_P}), NULL)")).alias("high"),
        F.min(F.expr(f"IF({finite}, {row_sum}, NULL)")).alias("s_min"),
        F.max(F.expr(f"IF({finite}, {row_sum}, NULL)")).alias("s_max"),
    ).collect()[0]
    n = int(row["n"])
    w_min, w_max = int(row["w_min"] or 0), int(row["w_max"] or 0)
    if n == 0:
        raise BadInputError("the eval data has no samples")
    if w_min != w_max or w_max != head.units:
        width = w_max if w_min == w_max else f"{w_min} to {w_max}"
        raise BadInputError(f"predictions have {width} column(s) but the head has {head.units} unit(s)")
    sums = None
    if head.units > 1 and row["s_min"] is not None:
        sums = (float(row["s_min"]), float(row["s_max"]))
    return OutputSummary(
        n_rows=n,
        width=w_max,
        non_finite_rows=int(row["bad"] or 0),
        low=None if row["low"] is None else float(row["low"]),
        high=None if row["high"] is None else float(row["high"]),
        row_sums=sums,
    )


def _label_value(labels: LabelEvidence) -> str:
    """One label per row as a double (the file's number, or the only entry of a width-1 array)."""
    return f"CAST({_Y}[0] AS DOUBLE)" if len(labels.shape) == 2 else f"CAST({_Y} AS DOUBLE)"


def single_label_counts(
    predicted: DataFrame,
    head: HeadSpec,
    labels: LabelEvidence,
    task: str,
    reading: Reading,
    summary: OutputSummary,
    *,
    exact_rows: int = ROC_EXACT_ROWS,
) -> tuple[SingleLabelCounts, AccuracyCounts]:
    """The confusion matrix and every sum behind the single-label metrics, in one grouped job
    (plus the ROC-AUC's own: exact up to ``exact_rows`` rows, bounded beyond)."""
    if labels.is_dense and labels.width != head.units:
        raise BadInputError(f"labels have {labels.width} columns but predictions have {head.units}")
    if task == "binary":
        return _binary_counts(predicted, labels, reading)
    return _multiclass_counts(predicted, head, labels, reading, summary, exact_rows)


def _clip_renormalised(frame: DataFrame, source: str, target: str, low: str, high: str) -> DataFrame:
    """``frame`` with column ``target``: ``source`` clipped to [low, high] per entry, then divided
    by its row sum (through two helper columns, so each row is summed once)."""
    from pyspark.sql import functions as F

    frame = frame.withColumn(
        f"{target}_c", F.expr(f"transform({source}, v -> least(greatest(v, {low}), {high}))")
    )
    frame = frame.withColumn(f"{target}_s", F.expr(f"aggregate({target}_c, 0D, (a, w) -> a + w)"))
    return frame.withColumn(target, F.expr(f"transform({target}_c, v -> v / {target}_s)"))


def _multiclass_counts(
    predicted: DataFrame,
    head: HeadSpec,
    labels: LabelEvidence,
    reading: Reading,
    summary: OutputSummary,
    exact_rows: int,
) -> tuple[SingleLabelCounts, AccuracyCounts]:
    from pyspark.sql import functions as F

    k = head.units
    frame = predicted
    if labels.is_dense:
        dense = f"CAST({_Y} AS ARRAY<DOUBLE>)"
        frame = frame.withColumn(
            "_t", F.expr(f"CAST(array_position({dense}, array_max({dense})) - 1 AS INT)")
        )
        truth = f"element_at(CAST({_Y} AS ARRAY<DOUBLE>), j + 1)"
    else:
        frame = frame.withColumn("_t", F.expr(f"CAST({_label_value(labels)} AS INT)"))
        truth = "IF(j = _t, 1D, 0D)"
    frame = frame.withColumn("_q", F.expr(f"CAST(array_position({_P}, array_max({_P})) - 1 AS INT)"))
    frame = frame.withColumn("_pt", F.expr(f"element_at({_P}, _t + 1)"))
    sums: list[Any] = [F.count(F.lit(1)).alias("n")]
    for kk in TOP_K:
        if kk < k:
            rank = f"size(filter({_P}, (v, j) -> v > _pt OR (v = _pt AND j > _t)))"
            sums.append(F.sum(F.expr(f"CAST({rank} < {kk} AS INT)")).alias(f"top{kk}"))
    thresholds = {"e05": 0.5, **({"e0": 0.0} if reading.are_logits else {})}
    for key, threshold in thresholds.items():
        matches = f"size(filter(transform({_P}, (v, j) -> IF(v > {threshold}D, 1D, 0D) = {truth}), b -> b))"
        sums.append(F.sum(F.expr(matches)).alias(key))

    probs: ProbabilitySums | None = None
    scores: str | None = None
    renormalise = head.activation == "sigmoid"
    if reading.probabilities is not None:
        if reading.probabilities == "softmax":
            frame = frame.withColumn("_e", F.expr(f"transform({_P}, v -> exp(v - array_max({_P})))"))
            frame = frame.withColumn("_se", F.expr("aggregate(_e, 0D, (a, w) -> a + w)"))
            frame = frame.withColumn("_probs", F.expr("transform(_e, v -> v / _se)"))
            sums_to_one = True
        else:
            frame = frame.withColumn("_probs", F.col(PREDICTION))
            sums_to_one = rows_sum_to_one(summary)
        scores = "_probs"
        if not sums_to_one and renormalise:
            frame = _clip_renormalised(frame, "_probs", "_scores", "1e-15D", "double('Infinity')")
            scores = "_scores"
        if sums_to_one or renormalise:
            frame = _clip_renormalised(frame, scores, "_full", "1e-15D", "1D")
            log_term = f"-ln(least(greatest(element_at(_full, _t + 1), {_EPS!r}D), 1D - {_EPS!r}D))"
            brier_term = (
                "aggregate(transform(_full, (v, j) -> (v - IF(j = _t, 1D, 0D)) * (v - IF(j = _t, 1D, 0D))), "
                "0D, (a, w) -> a + w)"
            )
            sums += [F.sum(F.expr(log_term)).alias("ll"), F.sum(F.expr(brier_term)).alias("brier")]
        probs = ProbabilitySums(sums_to_one=sums_to_one, renormalised=renormalise and not sums_to_one)

    groups = frame.groupBy("_t", "_q").agg(*sums).collect()
    confusion = [[0] * k for _ in range(k)]
    totals: dict[str, float] = {}
    for group in groups:
        confusion[int(group["_t"])][int(group["_q"])] += int(group["n"])
        for key, value in group.asDict().items():
            if key not in ("_t", "_q", "n") and value is not None:
                totals[key] = totals.get(key, 0.0) + float(value)
    if probs is not None and "ll" in totals:
        probs = ProbabilitySums(
            sums_to_one=probs.sums_to_one,
            renormalised=probs.renormalised,
            log_loss_sum=totals["ll"],
            brier_sum=totals["brier"],
        )
    top_k = {kk: int(totals.get(f"top{kk}", 0)) for kk in TOP_K if kk < k}
    roc = _collected_roc(frame, scores, summary.n_rows, exact_rows, k=k) if scores is not None else None
    class_rows = tuple(sum(row) for row in confusion)
    n = sum(class_rows)
    counts = SingleLabelCounts(
        confusion=tuple(tuple(row) for row in confusion),
        binary=False,
        probabilities=probs,
        roc_auc=roc,
        top_k_hits=top_k,
    )
    accuracy = AccuracyCounts(
        n=n,
        correct=sum(confusion[c][c] for c in range(k)),
        class_rows=class_rows,
        recall_hits=tuple(confusion[c][c] for c in range(k)),
        elementwise_05=int(totals.get("e05", 0)),
        elementwise_0=int(totals.get("e0", 0)),
        top_k=top_k,
    )
    return counts, accuracy


def _collected_roc(
    frame: DataFrame, scores: str, n: int, exact_rows: int, *, k: int = 0, multilabel: bool = False
) -> RocAuc:
    """ROC-AUC (one-vs-rest macro for multiclass, macro over labels for multi-label): exact on the
    rows collected to the driver up to ``exact_rows`` (:data:`ROC_EXACT_ROWS` by default), else
    bounds from score histograms (:func:`_histogram_roc`)."""
    import numpy as np

    if n > exact_rows:
        return _histogram_roc(frame, scores, k=k, multilabel=multilabel)
    truth = "_y" if multilabel else "_t"
    rows = frame.select(truth, scores).toPandas()
    if len(rows) == 0:
        return RocAuc(None, ("ROC-AUC undefined: no rows",))
    matrix = np.stack([np.asarray(v, dtype=np.float64) for v in rows[scores].to_numpy()])
    if multilabel:
        y = np.stack([np.asarray(v, dtype=np.float64) for v in rows[truth].to_numpy()]).astype(np.int64)
        return multilabel_roc_auc(y, matrix)
    return roc_auc_of(rows[truth].to_numpy(dtype=np.int64), matrix, k, binary=False)


def _logit_bin_sql(p: str, bins: int) -> str:
    """:func:`lossaudit.core.counts.logit_bins` of the double ``p`` with ``bins`` bins, in Spark SQL."""
    span = ROC_LOGIT_SPAN
    z = f"least(greatest(ln({p}) - ln(1D - {p}), {-span}D), {span}D)"
    clipped = f"CASE WHEN {p} <= 0D THEN {-span}D WHEN {p} >= 1D THEN {span}D ELSE {z} END"
    return f"CAST(least(floor(({clipped} + {span}D) / {2 * span}D * {bins}), {bins - 1}) AS INT)"


def _histogram_roc(frame: DataFrame, scores: str, *, k: int, multilabel: bool) -> RocAuc:
    """Bounds on the macro ROC-AUC from one aggregate: per class (label), how many positive and
    negative rows put their score in each logit bin; the counts of the bins that hold a score reach
    the driver (at most 2 x K x bins, whatever the rows; :func:`~lossaudit.core.counts.bins_for` keeps
    that under :data:`~lossaudit.core.counts.HISTOGRAM_COUNTS`), never a row."""
    import numpy as np
    from pyspark.sql import functions as F

    truth = "element_at(CAST(_y AS ARRAY<DOUBLE>), j + 1) = 1D" if multilabel else "_t = j"
    bins = bins_for(k)
    entries = frame.select(
        F.explode(
            F.expr(
                f"transform(sequence(0, {k - 1}), j -> named_struct('c', j, 'pos', {truth}, "
                f"'b', {_logit_bin_sql(f'CAST(element_at({scores}, j + 1) AS DOUBLE)', bins)}))"
            )
        ).alias("e")
    )
    counted = entries.groupBy("e.c", "e.pos", "e.b").count().collect()
    # Only the bins that hold a score come back: each class's pair of histograms is filled from
    # them when its turn comes, so the driver holds one class's bins at a time.
    by_class: dict[int, list[Any]] = {}
    for row in counted:
        by_class.setdefault(int(row["c"]), []).append(row)
    classes = k

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for c in range(classes):
            positives = np.zeros(bins, dtype=np.int64)
            negatives = np.zeros(bins, dtype=np.int64)
            for row in by_class.get(c, ()):
                (positives if row["pos"] else negatives)[int(row["b"])] += int(row["count"])
            yield positives, negatives

    return roc_auc_bounds(pairs(), n_classes=classes, what="labels" if multilabel else "classes")


def _binary_counts(
    predicted: DataFrame, labels: LabelEvidence, reading: Reading
) -> tuple[SingleLabelCounts, AccuracyCounts]:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F

    y = _label_value(labels)
    frame = predicted.withColumn("_y", F.expr(y)).withColumn("_p0", F.expr(f"element_at({_P}, 1)"))
    frame = frame.withColumn("_t", F.expr("CAST(_y AS INT)"))
    threshold = 0.0 if reading.are_logits else 0.5
    sums: list[Any] = [
        F.count(F.lit(1)).alias("n"),
        F.sum(F.expr("CAST(IF(_p0 > 0.5D, 1D, 0D) = _y AS INT)")).alias("e05"),
    ]
    probs: ProbabilitySums | None = None
    if reading.probabilities is not None:
        p1 = "0.5D * (1D + tanh(0.5D * _p0))" if reading.probabilities == "sigmoid" else "_p0"
        frame = frame.withColumn("_p1", F.expr(p1))
        frame = frame.withColumn("_q", F.expr("CAST(_p1 > 0.5D AS INT)"))
        c0, c1 = "least(greatest(1D - _p1, 1e-15D), 1D)", "least(greatest(_p1, 1e-15D), 1D)"
        q_true = f"IF(_t = 1, {c1}, {c0}) / ({c0} + {c1})"
        sums += [
            F.sum(F.expr(f"-ln(least(greatest({q_true}, {_EPS!r}D), 1D - {_EPS!r}D))")).alias("ll"),
            F.sum(F.expr("(_p1 - _y) * (_p1 - _y)")).alias("brier"),
        ]
        score = "_p1"
    else:
        frame = frame.withColumn("_q", F.expr(f"CAST(_p0 > {threshold}D AS INT)"))
        score = "_p0"
    frame = frame.withColumn("_d", F.expr(f"CAST(_p0 > {threshold}D AS INT)"))
    groups = frame.groupBy("_t", "_q", "_d").agg(*sums).collect()
    confusion = [[0, 0], [0, 0]]
    hits = [0, 0]
    totals: dict[str, float] = {}
    for group in groups:
        t, q, d, count = int(group["_t"]), int(group["_q"]), int(group["_d"]), int(group["n"])
        confusion[t][q] += count
        if d == t:
            hits[t] += count
        for key in ("e05", "ll", "brier"):
            value = group.asDict().get(key)
            if value is not None:
                totals[key] = totals.get(key, 0.0) + float(value)
    if reading.probabilities is not None:
        probs = ProbabilitySums(sums_to_one=True, log_loss_sum=totals["ll"], brier_sum=totals["brier"])
    class_rows = (sum(confusion[0]), sum(confusion[1]))
    if min(class_rows) == 0:
        roc = RocAuc(None, ("ROC-AUC undefined: only one class in the labels",))
    else:
        evaluator = BinaryClassificationEvaluator(
            rawPredictionCol=score, labelCol="_y", metricName="areaUnderROC", numBins=0
        )
        roc = RocAuc(float(evaluator.evaluate(frame.select(score, "_y"))))
    counts = SingleLabelCounts(
        confusion=(tuple(confusion[0]), tuple(confusion[1])), binary=True, probabilities=probs, roc_auc=roc
    )
    accuracy = AccuracyCounts(
        n=sum(class_rows),
        correct=sum(hits),
        class_rows=class_rows,
        recall_hits=(hits[0], hits[1]),
        elementwise_05=int(totals.get("e05", 0)),
        label_zero=class_rows[0],
    )
    return counts, accuracy


def multilabel_counts(
    predicted: DataFrame,
    head: HeadSpec,
    labels: LabelEvidence,
    reading: Reading,
    summary: OutputSummary,
    *,
    exact_rows: int = ROC_EXACT_ROWS,
) -> tuple[MultiLabelCounts, MultiLabelHits]:
    """Per-label true positives, false positives and false negatives (one grouped job), and the
    per-row sums behind the 'samples' averages, log loss, Brier score and every definition of
    'accuracy' (one aggregate), for multi-hot labels."""
    from pyspark.sql import functions as F

    k = head.units
    if labels.width != k:
        raise BadInputError(f"labels have {labels.width} columns but predictions have {k}")
    frame = predicted.withColumn("_y", F.expr(f"CAST({_Y} AS ARRAY<DOUBLE>)"))
    threshold = 0.0 if reading.are_logits else 0.5
    if reading.probabilities == "sigmoid":
        frame = frame.withColumn("_probs", F.expr(f"transform({_P}, v -> 0.5D * (1D + tanh(0.5D * v)))"))
    elif reading.probabilities == "raw":
        frame = frame.withColumn("_probs", F.col(PREDICTION))
    decided = "_probs" if reading.probabilities is not None else _P
    cut = 0.5 if reading.probabilities is not None else threshold
    frame = frame.withColumn("_yhat", F.expr(f"transform({decided}, v -> IF(v > {cut}D, 1D, 0D))"))
    frame = frame.withColumn(
        "_hit", F.expr("size(filter(zip_with(_yhat, _y, (a, b) -> a = 1D AND b = 1D), x -> x))")
    )
    frame = frame.withColumn("_npred", F.expr("aggregate(_yhat, 0D, (a, v) -> a + v)"))
    frame = frame.withColumn("_ntrue", F.expr("aggregate(_y, 0D, (a, v) -> a + v)"))

    def matches(column: str) -> str:
        return f"size(filter(zip_with({column}, _y, (a, b) -> a = b), x -> x))"

    above = f"transform({_P}, v -> IF(v > {threshold}D, 1D, 0D))"
    top = f"array_position({_P}, array_max({_P}))"
    sums: list[Any] = [
        F.count(F.lit(1)).alias("n"),
        F.sum(F.expr(f"CAST({matches('_yhat')} = {k} AS INT)")).alias("exact"),
        F.sum(F.expr("IF(_npred > 0, _hit / _npred, 0D)")).alias("sp"),
        F.sum(F.expr("IF(_ntrue > 0, _hit / _ntrue, 0D)")).alias("sr"),
        F.sum(F.expr("IF(_npred + _ntrue > 0, 2D * _hit / (_npred + _ntrue), 0D)")).alias("sf"),
        F.sum(F.expr(matches(above))).alias("entries"),
        F.sum(F.expr(f"CAST({matches(above)} = {k} AS INT)")).alias("rows_all"),
        F.sum(F.expr(f"CAST({matches(f'transform({_P}, v -> IF(v > 0.5D, 1D, 0D))')} AS BIGINT)")).alias(
            "e05"
        ),
        F.sum(F.expr(f"CAST({top} = array_position(_y, array_max(_y)) AS INT)")).alias("argmax"),
        F.sum(F.expr(f"CAST(element_at(_y, CAST({top} AS INT)) = 1D AS INT)")).alias("top1"),
    ]
    if reading.probabilities is not None:
        clipped = "transform(_probs, v -> least(greatest(v, 1e-7D), 1D - 1e-7D))"
        entropy = f"zip_with({clipped}, _y, (q, t) -> t * ln(q) + (1D - t) * ln(1D - q))"
        sums += [
            F.sum(F.expr(f"aggregate({entropy}, 0D, (a, v) -> a + v)")).alias("ll"),
            F.sum(
                F.expr("aggregate(zip_with(_probs, _y, (q, t) -> (q - t) * (q - t)), 0D, (a, v) -> a + v)")
            ).alias("brier"),
        ]
    row = frame.agg(*sums).collect()[0]
    codes = frame.select(
        F.posexplode(F.expr("zip_with(_yhat, _y, (a, b) -> CAST(a * 2D + b AS INT))")).alias("j", "code")
    )
    tp, fp, fn = [0] * k, [0] * k, [0] * k
    for j, code, count in codes.groupBy("j", "code").count().collect():
        if code == 3:
            tp[j] += count
        elif code == 2:
            fp[j] += count
        elif code == 1:
            fn[j] += count
    roc = None
    if reading.probabilities is not None:
        roc = _collected_roc(frame, "_probs", summary.n_rows, exact_rows, k=k, multilabel=True)
    n = int(row["n"])
    counts = MultiLabelCounts(
        n=n,
        tp=tuple(tp),
        fp=tuple(fp),
        fn=tuple(fn),
        exact_rows=int(row["exact"] or 0),
        sample_precision_sum=float(row["sp"] or 0.0),
        sample_recall_sum=float(row["sr"] or 0.0),
        sample_f1_sum=float(row["sf"] or 0.0),
        log_loss_sum=None if reading.probabilities is None else -float(row["ll"]),
        brier_sum=None if reading.probabilities is None else float(row["brier"]),
        roc_auc=roc,
    )
    hits = MultiLabelHits(
        n=n,
        k=k,
        entries=int(row["entries"] or 0),
        rows_all=int(row["rows_all"] or 0),
        argmax=int(row["argmax"] or 0),
        top1=int(row["top1"] or 0),
        entries_05=int(row["e05"] or 0),
    )
    return counts, hits
