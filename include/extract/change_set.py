"""Change detection while the extract streams a snapshot: which source rows the member table already holds.

Every row read gets its keyed hash (lakehouse_jobs.change_hash) and lands with it in the full snapshot. With
a usable change state (the member job's (member_id, source_hash) of the table, lakehouse_jobs.change_state),
a row whose hash the state holds is unchanged; every other row is also written to the batch's change files
as it streams, so memory holds the state's hashes and keys (about 60 bytes a member) and one fetch batch.
At the end (``ChangeDetector.finish``):

- a key of a changed row that the table holds is "changed", one it lacks "new" (rows without a usable key
  too: the job quarantines them);
- a key the source holds more than once is "duplicate", every copy of it goes to the change files (the job
  quarantines them with today's rules), including copies whose hash the state held: those are read back from
  the snapshot just written (rare: a broken source);
- a key of the table that no source row has is "deleted"; a key the state holds only for a quarantined row
  that no source row has any more is "gone" (the job forgets it; no table row is deleted).

A quarantined row the source still holds unchanged matches the state too (the job keeps such rows in it):
it is not sent again, so a day whose only "changes" are old bad rows is an unchanged day.

A state is used only when it describes the member table as it is: its version must be the table's last
data-changing commit (lakehouse_jobs.delta_log, read from the table's ``_delta_log`` on S3) and its hashes
must be of the current rules (lakehouse_jobs.change_state.state_rules_version). Otherwise, or when it names a
duplicated key, the batch has no change set and the job compares the whole snapshot. The job checks the same
again before it trusts the change set (lakehouse_jobs.member.job).
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse_jobs.change_hash import DIGEST_BYTES, row_hashes
from lakehouse_jobs.change_state import POINTER_NAME, STATE_COLUMNS, ChangeState, ChangeStateError
from lakehouse_jobs.contracts import ROW_HASH_COLUMN
from lakehouse_jobs.delta_log import DeltaLogError, last_data_change
from lakehouse_jobs.keys import member_key_arrow

log = logging.getLogger(__name__)

_COMMIT_FILE = re.compile(r"(\d{20})\.json")


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").removeprefix("s3a://").partition("/")
    return bucket, key


@dataclass(frozen=True)
class StateLocation:
    """Where the job keeps a table's change state, and the Delta table it describes (include/layout.py)."""

    bucket: str
    state_prefix: str  # ends with "/"
    table_prefix: str  # ends with "/"


@dataclass
class LoadedState:
    """A change state read into memory: hashes sorted (numpy bytes of DIGEST_BYTES), keys and in_table (numpy
    bool) in the same order."""

    state: ChangeState
    hashes: np.ndarray
    keys: pa.Array
    in_table: np.ndarray


def load_state(s3, location: StateLocation, rules_version: str) -> LoadedState | None:
    """The change state at `location` when it describes its Delta table as it is now, else None with the
    reason logged (the job then compares the whole snapshot).

    `rules_version`: lakehouse_jobs.change_state.state_rules_version of the contract. Raises botocore's
    ClientError for anything but a missing pointer.
    """
    bucket, state_prefix, table_prefix = location.bucket, location.state_prefix, location.table_prefix
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{state_prefix}{POINTER_NAME}")["Body"].read()
    except s3.exceptions.NoSuchKey:
        log.info("no change state yet: the job compares the whole snapshot")
        return None
    try:
        state = ChangeState.from_json(body, source=f"s3://{bucket}/{state_prefix}{POINTER_NAME}")
    except ChangeStateError as e:
        log.warning("%s: the job compares the whole snapshot", e)
        return None
    if state.rules_version != rules_version:
        log.info("change state made with rules %s, now %s: every row is compared again", state.rules_version,
                 rules_version)
        return None
    if state.duplicate_keys:
        log.warning("the member table held %d duplicated ids at version %d: the job compares the whole "
                    "snapshot", state.duplicate_keys, state.table_version)
        return None
    reason = stale_reason(s3, bucket, table_prefix, state.table_version)
    if reason:
        log.info("change state of version %d not used: %s; the job compares the whole snapshot",
                 state.table_version, reason)
        return None
    tables = []
    for path in state.files:
        file_bucket, key = _split_uri(path)
        data = s3.get_object(Bucket=file_bucket, Key=key)["Body"].read()
        tables.append(pq.read_table(io.BytesIO(data), columns=list(STATE_COLUMNS)))
    table = pa.concat_tables(tables) if tables else pa.table({"member_id": pa.array([], pa.string()),
                                                              "source_hash": pa.array([], pa.binary()),
                                                              "in_table": pa.array([], pa.bool_())})
    if table.num_rows != state.rows:
        log.warning("change state lists %d rows, its files hold %d: the job compares the whole snapshot",
                    state.rows, table.num_rows)
        return None
    hashes = pc.cast(table["source_hash"].combine_chunks(), pa.binary(DIGEST_BYTES))
    order = pc.sort_indices(hashes)
    hashes = _as_numpy(hashes.take(order))
    keys = table["member_id"].combine_chunks().take(order)
    in_table = table["in_table"].combine_chunks().take(order).to_numpy(zero_copy_only=False)
    log.info("change state: %d members at version %d, %d quarantined rows", state.table_rows, state.table_version,
             state.rows - state.table_rows)
    return LoadedState(state, hashes, keys, in_table)


def stale_reason(s3, bucket: str, table_prefix: str, version: int) -> str | None:
    """Why the Delta table under `table_prefix` no longer holds the data of its version `version` (a later
    commit changed data, or the log no longer says), or None when it still does."""
    log_prefix = f"{table_prefix}_delta_log/"
    versions = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=log_prefix, StartAfter=f"{log_prefix}{version:020d}.json"):
        for obj in page.get("Contents", []):
            if match := _COMMIT_FILE.fullmatch(obj["Key"].removeprefix(log_prefix)):
                versions.append(int(match.group(1)))
    if not versions:
        here = _exists(s3, bucket, f"{log_prefix}{version:020d}.json")
        return None if here else f"the table has no version {version}"

    def read(v: int) -> bytes | None:
        try:  # one GET: a HEAD first would double the requests for what is nearly always there
            return s3.get_object(Bucket=bucket, Key=f"{log_prefix}{v:020d}.json")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    try:
        changed = last_data_change(max(versions), read, since=version)
    except DeltaLogError as e:
        return str(e)
    return None if changed == version else f"version {changed} changed the table's data since"


def _exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _as_numpy(digests: pa.Array) -> np.ndarray:
    """A fixed_size_binary array (no nulls) as a numpy array of bytes strings, without copying."""
    offset = digests.offset * DIGEST_BYTES
    buffer = digests.buffers()[1]
    return np.frombuffer(buffer, dtype=f"S{DIGEST_BYTES}", count=len(digests), offset=offset)


@dataclass(frozen=True)
class Outcome:
    """What finish() found: source rows by kind, the key index rows, and the keys whose matched copies
    must still be added to the change files (duplicates of unchanged rows)."""

    counts: dict[str, int]
    key_index: pa.Table  # member_id (as the table holds it), change
    reread_keys: pa.Array  # keys whose rows with state-held hashes go to the change files too


class ChangeDetector:
    """Hashes every batch and, with a state, sends the rows it lacks to `on_change` (thread-safe: parallel
    key ranges share one detector)."""

    def __init__(self, columns: list[str], key_column: str, rules_version: str, hash_key: bytes,
                 state: LoadedState | None, on_change: Callable[[pa.Table], None] | None = None):
        self.columns, self.key_column = columns, key_column
        self.rules_version, self.hash_key, self.state = rules_version, hash_key, state
        self.on_change = on_change
        self._lock = threading.Lock()
        self._matched = np.zeros(len(state.hashes) if state else 0, dtype=np.int32)
        self._changed_keys: list[pa.Array] = []
        self.rows = 0

    def stream(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Each batch with ``_row_hash`` appended; rows the state lacks also go to on_change."""
        for batch in batches:
            digests = row_hashes(batch, self.columns, self.rules_version, self.hash_key)
            hashed = batch.append_column(pa.field(ROW_HASH_COLUMN, pa.binary(DIGEST_BYTES), nullable=False), digests)
            if self.state is not None:
                self._compare(hashed, digests)
            else:
                with self._lock:
                    self.rows += batch.num_rows
            yield hashed

    def _compare(self, hashed: pa.RecordBatch, digests: pa.Array) -> None:
        values = _as_numpy(digests)
        at = np.searchsorted(self.state.hashes, values)
        inside = at < len(self.state.hashes)
        found = np.zeros(len(values), dtype=bool)
        found[inside] = self.state.hashes[at[inside]] == values[inside]
        changed = hashed.filter(pa.array(~found))
        with self._lock:
            self.rows += hashed.num_rows
            np.add.at(self._matched, at[found], 1)
            if changed.num_rows:
                self._changed_keys.append(member_key_arrow(changed.column(self.key_column)))
                self.on_change(pa.Table.from_batches([changed]))

    def finish(self) -> Outcome:
        """The kinds of every key (module docstring). Only with a state."""
        state, matched = self.state, self._matched
        keys = pa.chunked_array(self._changed_keys, pa.string()).combine_chunks() if self._changed_keys \
            else pa.array([], pa.string())
        changed_rows = len(keys)
        usable = keys.filter(pc.is_valid(keys))
        per_key = pa.table({"k": usable}).group_by("k").aggregate([("k", "count")])
        k, count = per_key["k"].combine_chunks(), per_key["k_count"].to_numpy()

        def mask(values: np.ndarray) -> pa.Array:
            return pa.array(values, pa.bool_())

        def member_of(values: pa.Array, of: pa.Array) -> np.ndarray:
            return pc.fill_null(pc.is_in(values, value_set=of), False).to_numpy(zero_copy_only=False)

        held_keys = state.keys.filter(mask(matched > 0))  # keys with a source row the state holds as it is
        in_table = member_of(k, state.keys.filter(mask(state.in_table)))
        also_held = member_of(k, held_keys)
        kinds = np.where((count > 1) | also_held, "duplicate", np.where(in_table, "changed", "new"))
        changed_key = member_of(state.keys, k)
        # one source row twice, unchanged: the job keeps one copy and quarantines the others
        exact_copies = (matched > 1) & ~changed_key
        rereads = member_of(state.keys, k.filter(mask(also_held)))
        reread = pa.concat_arrays([k.filter(mask(also_held)), state.keys.filter(mask(exact_copies))])
        reread_rows = int(matched[rereads | exact_copies].sum())
        seen = member_of(state.keys, pa.concat_arrays([k, held_keys]))
        named = pc.is_valid(state.keys).to_numpy(zero_copy_only=False)
        deleted = state.in_table & ~seen
        gone = ~state.in_table & ~seen & named
        key_index = pa.table({
            "member_id": pa.concat_arrays([k, state.keys.filter(mask(exact_copies)), state.keys.filter(mask(deleted)),
                                           state.keys.filter(mask(gone))]),
            "change": pa.array(list(kinds) + ["duplicate"] * int(exact_copies.sum()) + ["deleted"] * int(deleted.sum())
                               + ["gone"] * int(gone.sum()), pa.string()),
        })
        rows_by_kind = {kind: int(count[kinds == kind].sum()) for kind in ("new", "changed", "duplicate")}
        rows_by_kind["new"] += changed_rows - len(usable)  # rows without a usable key
        rows_by_kind["duplicate"] += reread_rows
        counts = rows_by_kind | {"unchanged": self.rows - changed_rows - reread_rows, "deleted": int(deleted.sum())}
        return Outcome(counts, key_index, reread)
