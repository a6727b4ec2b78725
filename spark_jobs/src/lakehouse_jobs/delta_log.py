"""What a Delta commit did to a table's rows, read from its log file (``_delta_log/<version>.json``,
newline-delimited JSON actions). Pure Python, so the extract (Airflow) and the Spark jobs apply one rule.

The rule is the Delta protocol's: an ``add`` or ``remove`` action with ``dataChange: true`` changes the
table's data; OPTIMIZE, ZORDER and deletion-vector purges rewrite files with ``dataChange: false``, and
VACUUM or a property change writes no such action (PROTOCOL.md, "Add File and Remove File").
"""

from __future__ import annotations

import json
from collections.abc import Callable


class DeltaLogError(RuntimeError):
    """A commit file is missing or unreadable where the rule needs it."""


def changes_data(commit_json: str | bytes) -> bool:
    """True when the commit file adds or removes a file with dataChange true."""
    text = commit_json.decode() if isinstance(commit_json, bytes) else commit_json
    for line in text.splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        for kind in ("add", "remove"):
            if kind in action and action[kind].get("dataChange", True):
                return True
    return False


def last_data_change(latest: int, read_commit: Callable[[int], str | bytes | None], since: int) -> int:
    """The newest version in (`since`, `latest`] whose commit changes data, or `since` when none does.

    read_commit(version) returns the commit file's text, None when it is gone (log retention): then
    DeltaLogError, since what happened in between is unknown. Reads latest - since files, newest first.
    """
    for version in range(latest, since, -1):
        text = read_commit(version)
        if text is None:
            raise DeltaLogError(f"commit {version} is no longer in the Delta log")
        if changes_data(text):
            return version
    return since
