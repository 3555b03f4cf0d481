"""Training metrics as JSON lines: ``<save_model_path>/metrics.jsonl``, one object per record.

Records (written by rank 0):

* ``{"kind": "train", "step", "epoch", "loss", "paf": [S], "heatmap": [S], "lr",
  "images_per_s"}`` every ``log_interval`` steps (means since the previous record);
* ``{"kind": "val", "step", "epoch", "AP", "AP.5", ..., "AR(L)"}`` after each validation.

A resumed run appends; readers keep the last record of a (kind, step) pair.
"""
import json
import math
from pathlib import Path

from src.runtime.atomic_write import open_in_place

METRICS_NAME = "metrics.jsonl"


def _plain(value):
    """JSON-safe: numpy scalars and arrays to Python, NaN/Inf to None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """Appends records to a metrics.jsonl file (no file when ``path`` is None)."""

    def __init__(self, path):
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, kind, **fields):
        """Append one record of ``kind`` ("train" or "val")."""
        if self.path is None:
            return
        record = {"kind": kind}
        record.update({key: _plain(value) for key, value in fields.items()})
        with open_in_place(self.path, "a") as stream:      # never through a link placed there
            stream.write(json.dumps(record) + "\n")


def read_metrics(path):
    """Records of a metrics.jsonl file, as :func:`parse_metrics`.

    Raises:
        OSError: the file cannot be read.
    """
    return parse_metrics(Path(path).read_text(encoding="utf-8", errors="replace").splitlines())


def parse_metrics(lines):
    """Records of metrics.jsonl lines: ``{kind: [record, ...]}`` sorted by step, the last record
    of each (kind, step) kept (a resumed run re-logs steps). Broken lines are skipped."""
    latest = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "kind" in record and "step" in record:
            latest[(record["kind"], int(record["step"]))] = record
    by_kind = {}
    for (kind, _), record in sorted(latest.items(), key=lambda item: item[0][1]):
        by_kind.setdefault(kind, []).append(record)
    return by_kind
