"""Landed member batches generated without MySQL, for the benchmarks of the member job alone.

Batch A: N synthetic valid members (numpy and pyarrow, vectorised: 5M rows in ~8 s) in the landed schema;
batch B: A with the email and address of a random share changed, extracted a day later. Each is written as
the extract writes a batch (include/extract/engine.extract_table's file and row-group sizes, zstd) with its
`_manifest.json` (lakehouse_jobs.manifest)."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_FILE = 1_000_000  # the extract's defaults (include/extract/engine.extract_table)
ROW_GROUP_ROWS = 128 * 1024
BATCH_A = ("extract_date=2026-01-01", "2026-01-01T19:00:00.000000+00:00")
BATCH_B = ("extract_date=2026-01-02", "2026-01-02T19:00:00.000000+00:00")

FIRST_NAMES = ("Aiko", "Hiroshi", "Emma", "Liam", "Zoë", "José", "Ananya", "Chloé", "李小龍", "Noah", "Olivia",
               "Lukas", "Mia", "Ravi", "Sofia", "Yuki")
LAST_NAMES = ("Sato", "Suzuki", "Smith", "Müller", "Dubois", "Silva", "Patel", "O'Brien", "García", "Kim",
              "Nguyen", "Rossi", "小林", "Taylor", "Schmidt", "Tanaka")
STREETS = ("Main Street", "Oak Avenue", "Station Road", "Sakura-dori", "Rue de la Paix", "Hauptstraße",
           "Rua Augusta", "MG Road")
# (country as the source spells it, cities, phone number: literal text and runs of random digits)
COUNTRIES = (
    ("Japan", ("Tokyo", "Osaka", "Sapporo"), ("+81 3-", 4, "-", 4)),
    ("United States", ("Springfield", "Los Angeles", "Austin"), ("+1 213-948-", 4)),
    ("Germany", ("Berlin", "Hamburg", "Munich"), ("+49 30 ", 8)),
    ("France", ("Paris", "Lyon", "Lille"), ("+33 1 42 ", 2, " ", 2, " ", 2)),
    ("United Kingdom", ("London", "Leeds", "Bristol"), ("+44 20 7946 0", 3)),
    ("Brazil", ("São Paulo", "Campinas", "Santos"), ("+55 11 9", 4, "-", 4)),
    ("India", ("Mumbai", "Pune", "Chennai"), ("+91 98765 ", 5)),
    ("Australia", ("Sydney", "Newcastle", "Wollongong"), ("+61 2 9374 ", 4)),
)
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2025, 12, 31)  # registration dates


def member_ids(rng, n: int) -> pa.Array:
    """n distinct random UUIDs (version 4) as lower-case text, in ascending order (the extract reads the
    table in primary-key order): built as bytes in numpy, never one Python string per row."""
    import numpy as np
    import pyarrow as pa

    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    # lower-case hex sorts as its bytes do ('0'-'9' < 'a'-'f'), so sort the bytes as two big-endian words
    words = raw.view(">u8")
    raw = raw[np.lexsort((words[:, 1], words[:, 0]))]
    if n > 1 and (raw[1:] == raw[:-1]).all(axis=1).any():
        raise RuntimeError("duplicate UUIDs generated")  # 122 random bits: never, but the benchmark counts on it
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = hexdigits[raw >> 4], hexdigits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + stop - start] = hexed[:, start:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _digits(rng, n: int, width: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.utf8_lpad(pa.array(rng.integers(0, 10 ** width, n)).cast(pa.string()), width, "0")


def _concat(*parts) -> pa.Array:
    """Element-wise string concatenation of arrays and str literals."""
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def generate_members(n: int, seed: int) -> pa.Table:
    """Batch A: n valid members in the landed schema (lakehouse_jobs.contracts.arrow_schema(MEMBER,
    landed=True)), deterministic for a seed. Valid means the job quarantines none: lower-case UUIDs, emails
    m<i>@example.com, registration dates 2000-2025, real country names with phone numbers of that country."""
    import numpy as np
    import pyarrow as pa

    from lakehouse_jobs.contracts import MEMBER, arrow_schema

    rng = np.random.default_rng(seed)
    ids = member_ids(rng, n)
    country = rng.integers(0, len(COUNTRIES), n)
    # phone numbers country by country, then put back in row order
    by_country = np.argsort(country, kind="stable")
    chunks = []
    for c, (_, _, template) in enumerate(COUNTRIES):
        m = int((country == c).sum())
        chunks.append(_concat(*(p if isinstance(p, str) else _digits(rng, m, p) for p in template)))
    position = np.empty(n, dtype=np.int64)
    position[by_country] = np.arange(n)
    phone = pa.concat_arrays(chunks).take(pa.array(position))
    cities = pa.array([city for _, names, _ in COUNTRIES for city in names])
    city = cities.take(pa.array(country * 3 + rng.integers(0, 3, n)))
    address = _concat(pa.array(rng.integers(1, 10_000, n)).cast(pa.string()), " ",
                      pa.array(STREETS).take(pa.array(rng.integers(0, len(STREETS), n))))
    days = rng.integers((FIRST_DAY - dt.date(1970, 1, 1)).days, (LAST_DAY - dt.date(1970, 1, 1)).days + 1, n)
    columns = {
        "member_id": ids,
        "first_name": pa.array(FIRST_NAMES).take(pa.array(rng.integers(0, len(FIRST_NAMES), n))),
        "last_name": pa.array(LAST_NAMES).take(pa.array(rng.integers(0, len(LAST_NAMES), n))),
        "email": _concat("m", pa.array(np.arange(n)).cast(pa.string()), "@example.com"),
        "phone_number": phone,
        "address": address,
        "city": city,
        "country": pa.array([name for name, _, _ in COUNTRIES]).take(pa.array(country)),
        "registration_date": pa.array(days.astype(np.int32)).cast(pa.date32()),
        "registration_date_raw": pa.nulls(n, pa.string()),
    }
    schema = arrow_schema(MEMBER, landed=True)
    return with_row_hash(pa.Table.from_arrays([columns[f.name] for f in schema if f.name in columns],
                                              names=[f.name for f in schema if f.name in columns]))


# the extract's change-detection key stands for any key here: the job carries the hash, it never checks it
BENCH_HASH_KEY = bytes(32)


def with_row_hash(table: pa.Table) -> pa.Table:
    """`table` (the landed columns but the row hash) with ``_row_hash`` as the extract computes it
    (lakehouse_jobs.change_hash), cast to the landed schema."""
    from lakehouse_jobs.change_hash import row_hashes
    from lakehouse_jobs.contracts import MEMBER, ROW_HASH_COLUMN, arrow_schema

    schema = arrow_schema(MEMBER, landed=True)
    table = table.drop_columns([c for c in (ROW_HASH_COLUMN,) if c in table.column_names])
    table = table.cast(schema.remove(schema.get_field_index(ROW_HASH_COLUMN)))
    digests = row_hashes(table, table.column_names, MEMBER.effective_rules_version, BENCH_HASH_KEY)
    return table.append_column(schema.field(ROW_HASH_COLUMN), digests)


def change_members(table: pa.Table, share: float, seed: int) -> tuple[pa.Table, int]:
    """Batch B: `table` with the email and address of a random `share` of its rows changed (to other valid
    values); (the table, how many rows changed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    changed = round(n * share)
    rng = np.random.default_rng(seed + 1)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=changed, replace=False)] = True
    mask = pa.array(mask)
    email = _concat("m", pa.array(np.arange(n)).cast(pa.string()), "@example.net")
    table = table.set_column(table.schema.get_field_index("email"), table.schema.field("email"),
                             pc.if_else(mask, email, table["email"]))
    table = table.set_column(table.schema.get_field_index("address"), table.schema.field("address"),
                             pc.if_else(mask, _concat("Flat 2, ", table["address"]), table["address"]))
    return with_row_hash(table), changed


def write_batch(table: pa.Table, landing: Path, batch_id: str, extracted_at: str) -> dict:
    """Write `table` as the extract publishes a batch: zstd Parquet files of ROWS_PER_FILE rows under
    landing/member/<batch_id>/attempt=.../, then _manifest.json (lakehouse_jobs.manifest) naming them with
    their true rows, bytes and sha256. Returns facts about the batch, with the manifest's path."""
    import pyarrow.parquet as pq

    from include.extract.schema_drift import schema_hash, schema_json, select_sql
    from lakehouse_jobs.contracts import MEMBER
    from lakehouse_jobs.manifest import MANIFEST_NAME, BatchManifest, FileEntry

    batch_dir = landing / "member" / batch_id
    attempt = batch_dir / "attempt=member-history-bench"
    attempt.mkdir(parents=True)
    files = []
    for i, start in enumerate(range(0, table.num_rows, ROWS_PER_FILE)):
        path = attempt / f"part-{i:05d}.parquet"
        part = table.slice(start, ROWS_PER_FILE)
        with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
            writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        files.append(FileEntry(path=str(path), rows=part.num_rows, bytes=path.stat().st_size,
                               sha256=digest.hexdigest()))
    manifest = BatchManifest(
        table="member", batch_id=batch_id, run_id="member_history_bench", mode="snapshot",
        source_query=select_sql(MEMBER), row_count=table.num_rows, schema=schema_json(table.schema),
        schema_hash=schema_hash(table.schema), files=files, extracted_at=extracted_at,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    manifest_path = batch_dir / MANIFEST_NAME
    manifest_path.write_text(manifest.to_json())
    return {"batch_id": batch_id, "extracted_at": extracted_at, "manifest": str(manifest_path),
            "rows": table.num_rows, "files": [f.path for f in files], "bytes": sum(f.bytes for f in files)}


def generate_batches(landing: str, members: int, share: float, seed: int) -> dict:
    """Batches A and B under `landing` (run in a child process, so that the benchmark's own process holds no
    Arrow memory while it is measured)."""
    started = time.perf_counter()
    a = generate_members(members, seed)
    b, changed = change_members(a, share, seed)
    generated = time.perf_counter() - started
    facts = {"a": write_batch(a, Path(landing), *BATCH_A), "b": write_batch(b, Path(landing), *BATCH_B)}
    return {**facts, "changed": changed, "generate_s": round(generated, 2),
            "write_s": round(time.perf_counter() - started - generated, 2)}


