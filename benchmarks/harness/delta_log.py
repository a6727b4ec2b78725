"""What each Delta commit did, read from its `_delta_log/<version>.json` entry (any writer: Spark or delta-rs).

Source of the rules: the Delta transaction protocol (PROTOCOL.md, "Add File and Remove File"): a data file
written is an `add` of a path the commit does not also remove; an `add` of a path it removes, carrying a
`deletionVector`, writes a deletion vector onto an existing file."""

from __future__ import annotations

import json

ROW_METRICS = ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted", "numTargetRowsCopied",
               "numOutputRows")
TOTALS = ("data_files_added", "data_bytes_added", "deletion_vectors_written", "files_removed")


def commit_facts(version: int, log_entry: str) -> dict:
    """One commit: version, operation, data files and bytes added, deletion vectors written, files removed,
    and the operation's row metrics that its commitInfo reports (ints)."""
    actions = [json.loads(line) for line in log_entry.splitlines() if line.strip()]
    adds = [a["add"] for a in actions if "add" in a]
    removed = {a["remove"]["path"] for a in actions if "remove" in a}
    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
    metrics = info.get("operationMetrics") or {}
    new = [a for a in adds if a["path"] not in removed]
    return {"version": version, "operation": info.get("operation"), "data_files_added": len(new),
            "data_bytes_added": sum(a.get("size", 0) for a in new),
            "deletion_vectors_written": sum(1 for a in adds if a["path"] in removed and a.get("deletionVector")),
            "files_removed": len(removed - {a["path"] for a in adds}),
            **{k: int(metrics[k]) for k in ROW_METRICS if k in metrics}}


def commit_totals(commits: list[dict], fields: tuple[str, ...] = TOTALS) -> dict:
    """The number of commits, their operations in order, and the sum of each of `fields` (0 where absent)."""
    return {"commits": len(commits), "operations": [c["operation"] for c in commits],
            **{k: sum(c.get(k, 0) for c in commits) for k in fields}}
