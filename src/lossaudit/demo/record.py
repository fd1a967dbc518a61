"""Record a demo scenario's legacy run: ``python -m lossaudit.demo.record bce-softmax-multiclass``.

Trains the scenario's model with tf-keras in TF1 graph mode (:mod:`lossaudit.demo.legacy`) on the
scenario's own data (:func:`lossaudit.demo.scenarios.legacy_inputs`) and writes the run to the
package's recordings, which :func:`lossaudit.demo.legacy.load_recorded` reads where tf-keras is
not installed. Kept apart from both modules so that neither imports the other's side.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from lossaudit.demo.legacy import _train_in_graph_mode, recorded_path
from lossaudit.demo.scenarios import legacy_inputs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lossaudit.demo.record", description=__doc__)
    parser.add_argument("name", help="the scenario whose legacy run to record")
    parser.add_argument("--out", type=Path, help="where to write it (default: the package's recordings)")
    args = parser.parse_args(argv)
    spec, arrays = legacy_inputs(args.name)
    record = _train_in_graph_mode(spec, arrays)
    record["recorded_at"] = datetime.now(UTC).date().isoformat()
    record["command"] = f"python -m lossaudit.demo.record {args.name}"
    out = args.out or recorded_path(args.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    print(f"recorded {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
