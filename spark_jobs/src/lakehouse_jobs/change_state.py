"""The change state: the (member_id, source_hash) of every row of the member table at one version, and of
every source row the job quarantined and has not seen change since, written by the member job after its
commits and read by the next extract, which compares each source row's hash with it before anything is
landed (include/extract/change_set.py). A source row the state holds is settled: in the table as it is, or
quarantined as it is. Pure Python: no pyspark, no boto3.

Layout under the state root (``s3://<lakehouse>/_state/member``, include/layout.py): Parquet files under
``v=<table version>-<id>/`` and the pointer ``_current.json`` (ChangeState), written last: one PUT, so a
reader sees the old state or the new, never half of one. The state is trusted only for the table version it
names: a reader compares that with the table's last data-changing commit (lakehouse_jobs.delta_log).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

POINTER_NAME = "_current.json"
# member_id as the table holds it (lakehouse_jobs.keys.member_key; null for a quarantined row without one);
# source_hash the 32 bytes of the table's hex; in_table false for a quarantined row
STATE_COLUMNS = ("member_id", "source_hash", "in_table")


class ChangeStateError(ValueError):
    """A pointer that does not describe a usable state."""


@dataclass(frozen=True)
class ChangeState:
    table_version: int  # the member table's version whose rows the files list
    rules_version: str  # the contract's rules_version and change_hash.ENCODING the hashes were made with
    rows: int  # rows in the files
    table_rows: int  # rows of the table at table_version (the files' rows with in_table)
    duplicate_keys: int  # rows beyond the first of a member_id held more than once (a broken table if > 0)
    files: list[str]  # the Parquet files (STATE_COLUMNS), exactly these
    written_at: str  # ISO timestamp (UTC)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "change state") -> ChangeState:
        """Raises ChangeStateError naming `source` and every problem."""
        try:
            data = json.loads(text)
            state = cls(**data)
        except (ValueError, TypeError) as e:
            raise ChangeStateError(f"{source} is not a change state: {type(e).__name__}: {e}") from e
        problems = [f"{name} {getattr(state, name)!r} is not a whole number >= 0"
                    for name in ("table_version", "rows", "table_rows", "duplicate_keys")
                    if not (type(getattr(state, name)) is int and getattr(state, name) >= 0)]
        if not (isinstance(state.files, list) and all(isinstance(f, str) and f for f in state.files)):
            problems.append("files must be a list of paths")
        if not isinstance(state.rules_version, str):
            problems.append("rules_version is not a string")
        if problems:
            raise ChangeStateError(f"invalid change state {source}: " + "; ".join(problems))
        return state


def state_rules_version(rules_version: str) -> str:
    """What a state's hashes depend on: the contract's rules_version and the hash's encoding."""
    from lakehouse_jobs.change_hash import ENCODING

    return f"{rules_version}/{ENCODING}"
