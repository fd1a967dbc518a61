"""``promote_alias``: point an alias of each model at its newest passing version, never leave it on
a version whose latest verdict is fail or error. :func:`plan_alias_moves` decides from the job's
results (pure, tested without MLflow); :func:`promote_alias` reads where each alias points now and
applies the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from lossaudit.registry.results import KEPT, MOVED, NOT_AUDITED, REMOVED, AliasMove, VersionResult
from lossaudit.registry.tags import TAG_VERDICT
from lossaudit.registry.versions import alias_target

if TYPE_CHECKING:
    from mlflow import MlflowClient


def plan_alias_moves(
    results: Sequence[VersionResult],
    alias: str,
    current: Mapping[str, str | None],
    stored: Mapping[str, str | None] | None = None,
) -> list[AliasMove]:
    """Where ``alias`` should point in each model after the job.

    Parameters
    ----------
    results : the job's settled version results (their ``verdict`` is each one's latest).
    alias : the alias to promote.
    current : model -> the version the alias points to now (None: nowhere).
    stored : model -> the ``lossaudit.verdict`` tag of that version, for versions outside the
        job (None or missing: never audited).

    The alias moves to the model's newest passing version in the job (a fresh pass, or the stored
    pass of a skipped version; never one this job could not audit). It never stays on a version
    whose latest verdict is fail or error: with no passing version to move to, it is removed. It
    stays on a version whose latest verdict is pass (even one this job could not audit again), or
    on a never-audited version outside the job, when no newer version passed.
    """
    stored = stored or {}
    by_model: dict[str, list[VersionResult]] = {}
    for result in results:
        by_model.setdefault(result.model, []).append(result)
    moves: list[AliasMove] = []
    for model, versions in by_model.items():
        previous = current.get(model)
        action, target, reason = _plan_alias(versions, previous, stored.get(model) or None)
        moves.append(AliasMove(model, alias, previous, target, action, reason))
    return moves


def _plan_alias(
    versions: Sequence[VersionResult], previous: str | None, stored: str | None
) -> tuple[str, str | None, str]:
    """(action, target, reason) for one model's alias; see :func:`plan_alias_moves`."""
    by_number = {int(v.version): v for v in versions}
    passing = [n for n, v in by_number.items() if v.verdict == "pass" and v.status != NOT_AUDITED]
    best = max(passing, default=None)
    newest = (
        "" if best is None else f"v{best}, the newest passing version ({by_number[best].verdict_source} pass)"
    )
    if previous is None:
        if best is None:
            return KEPT, None, "not set: no version passed"
        return MOVED, str(best), f"set on {newest}; it pointed nowhere"
    p = int(previous)
    latest: str | None
    if p in by_number:
        latest, how = by_number[p].verdict, by_number[p].verdict_source
        if by_number[p].status == NOT_AUDITED:
            how += f", not audited now: {by_number[p].error_kind or 'error'}"
    else:
        latest = stored
        how = "stored, outside this job" if latest else "outside this job, never audited"
    if latest is not None and latest != "pass":
        if best is None:
            return (
                REMOVED,
                None,
                f"removed from v{p}: its latest verdict is {latest} ({how}) and no version passed",
            )
        return MOVED, str(best), f"moved to {newest}: v{p}'s latest verdict is {latest} ({how})"
    shown = f"{latest}, {how}" if latest else how
    if best is None:
        return KEPT, previous, f"kept on v{p} ({shown}): no version passed in this job"
    if best == p:
        return KEPT, previous, f"kept on v{p}, the newest passing version ({shown})"
    if p > best:
        return (
            KEPT,
            previous,
            f"kept on v{p} ({shown}): newer than v{best}, the newest that passed in this job",
        )
    return MOVED, str(best), f"moved to {newest}; was on older v{p} ({shown})"


def promote_alias(client: MlflowClient, results: Sequence[VersionResult], alias: str) -> list[AliasMove]:
    """Apply :func:`plan_alias_moves`: ``set_registered_model_alias`` for a move,
    ``delete_registered_model_alias`` for a removal."""
    models = sorted({r.model for r in results})
    current: dict[str, str | None] = {}
    stored: dict[str, str | None] = {}
    for model in models:
        found = alias_target(client, model, alias)
        current[model] = None if found is None else found[0]
        stored[model] = None if found is None else found[1].get(TAG_VERDICT)
    moves = plan_alias_moves(results, alias, current, stored)
    for move in moves:
        if move.moved and move.target is not None:
            client.set_registered_model_alias(move.model, alias, move.target)
        elif move.removed:
            client.delete_registered_model_alias(move.model, alias)
    return moves
