"""One AES-GCM ciphertext per member row against one per direct identifier (issue 22, item 6).

The member tables store each direct identifier (lakehouse_jobs.member.schema.DIRECT_COLUMNS: six of them) as
its own ``<name>_enc`` ciphertext (lakehouse_jobs.pii.encrypt). The alternative is one ciphertext of all
six as JSON. This measures both on the same rows, in one local Spark session, interleaved, and reports the
median of each and the ratio one/six:
- ``encrypt``: the six values of every row encrypted (what the member job's protect step pays);
- ``decrypt one column``: every row's email back in plaintext (what a PII reader's view pays per column);
- ``decrypt every column``: all six back;
- ``stored bytes``: the ciphertext columns written as Parquet (snappy), as Delta stores them.
Each timed action ends in Spark's ``noop`` sink, so it computes every value and writes nothing. The rows are
dev/seed_members.py's (every email and phone its own), standardised as the job would leave them.

    dev/stack.sh run python -m benchmarks.ciphertext_layout --rows 500000
    # writes benchmarks/results/ciphertext-layout-<date>.{json,md}
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness.processes import cpu_seconds, process_tree
from benchmarks.harness.results import RESULTS_DIR, machine, run_header, write_result
from benchmarks.harness.spark_job import local_session, spark_versions
from dev.seed_members import generate_members
from lakehouse_jobs import pii
from lakehouse_jobs.member.schema import DIRECT_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAYOUTS = ("six", "one")
ACTIONS = ("encrypt", "decrypt one column", "decrypt every column")


def _layouts(F):
    """{layout: (encrypting select list, {action: decrypting select list})} over the plaintext columns."""
    six = ([pii.encrypt(c).alias(f"{c}_enc") for c in DIRECT_COLUMNS],
           {"decrypt one column": [pii.decrypt("email_enc").alias("email")],
            "decrypt every column": [pii.decrypt(f"{c}_enc").alias(c) for c in DIRECT_COLUMNS]})
    # to_json leaves a null field out, and get_json_object gives null for a missing one: nulls round-trip
    whole = pii.decrypt("pii_enc")
    one = ([pii.encrypt(F.to_json(F.struct(*DIRECT_COLUMNS))).alias("pii_enc")],
           {"decrypt one column": [F.get_json_object(whole, "$.email").alias("email")],
            "decrypt every column": [F.from_json(whole, ", ".join(f"{c} STRING" for c in DIRECT_COLUMNS))
                                     .alias("pii")]})
    return {"six": six, "one": one}


def measure(spark: SparkSession, rows: int, repeats: int) -> dict:
    """{"timings": {layout: {action: [{"wall_s", "cpu_s"}, ...]}}, "stored_bytes": {layout: n},
    "mismatches": {layout: n}}. Raises AssertionError when a layout does not decrypt to what it encrypted:
    a contender that loses a value does less work, and its time would mean nothing."""
    from pyspark.sql import functions as F

    jvm = spark.sparkContext._gateway.proc.pid  # spark-submit execs the JVM in place

    def jvm_cpu() -> float:
        return sum(cpu_seconds(p) or 0.0 for p in process_tree(jvm))

    def timed(df) -> dict:
        wall, cpu = time.monotonic(), jvm_cpu()
        df.write.format("noop").mode("overwrite").save()
        return {"wall_s": round(time.monotonic() - wall, 2), "cpu_s": round(jvm_cpu() - cpu, 2)}

    keys = pii.PiiKeys(hmac_key=secrets.token_bytes(pii.KEY_BYTES), encryption_key=secrets.token_bytes(pii.KEY_BYTES))
    members = [{c: m.get(c) for c in ("member_id", *DIRECT_COLUMNS)}
               | {"phone_e164": m["phone_number"]} for m in generate_members(rows, seed=42)]
    plain = spark.createDataFrame(members, ", ".join(f"{c} STRING" for c in ("member_id", *DIRECT_COLUMNS)))
    layouts = _layouts(F)
    with tempfile.TemporaryDirectory(prefix="ciphertext-layout-") as tmp:
        plain.write.parquet(f"{tmp}/plain")
        source = pii.with_keys(spark, spark.read.parquet(f"{tmp}/plain"), keys).cache()
        source.count()
        stored, encrypted = {}, {}
        for layout, (select, _) in layouts.items():
            pii.drop_keys(source.select("member_id", *select)).write.parquet(f"{tmp}/{layout}")
            stored[layout] = sum(p.stat().st_size for p in Path(f"{tmp}/{layout}").glob("*.parquet"))
            encrypted[layout] = pii.with_keys(spark, spark.read.parquet(f"{tmp}/{layout}"), keys).cache()
            encrypted[layout].count()
        timings = {layout: {action: [] for action in ACTIONS} for layout in LAYOUTS}
        for _ in range(repeats):  # interleaved: a slow minute of the machine hits both layouts
            for layout, (select, decrypts) in layouts.items():
                timings[layout]["encrypt"].append(timed(source.select("member_id", *select)))
                for action, columns in decrypts.items():
                    timings[layout][action].append(timed(encrypted[layout].select("member_id", *columns)))
        # both decrypt to the plaintext they were given, nulls included
        expected = source.select("member_id", *DIRECT_COLUMNS)
        mismatches = {}
        for layout, (_, decrypts) in layouts.items():
            back = encrypted[layout].select("member_id", *decrypts["decrypt every column"])
            back = back.select("member_id", "pii.*") if layout == "one" else back
            mismatches[layout] = expected.exceptAll(back).count() + back.exceptAll(expected).count()
        assert mismatches == {"six": 0, "one": 0}, f"a layout does not round-trip: {mismatches}"
        source.unpersist()
        for df in encrypted.values():
            df.unpersist()
    return {"timings": timings, "stored_bytes": stored, "mismatches": mismatches}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    started_at, t0 = dt.datetime.now(dt.timezone.utc), time.monotonic()
    spark = local_session(args.driver_memory, app_name="ciphertext_layout")
    try:
        measured = measure(spark, args.rows, args.repeats) | {"versions": spark_versions(spark)}
    finally:
        spark.stop()
    medians = {layout: {action: {k: statistics.median(t[k] for t in runs) for k in ("wall_s", "cpu_s")}
                        for action, runs in actions.items()} for layout, actions in measured["timings"].items()}
    header = run_header("ciphertext_layout", started_at, time.monotonic() - t0, "benchmarks.ciphertext_layout", argv)
    report = header | {
        "rows": args.rows, "repeats": args.repeats, "machine": machine(), "direct_columns": DIRECT_COLUMNS,
        **measured, "medians": medians,
        "ratio_one_over_six": {action: round(medians["one"][action]["cpu_s"] / medians["six"][action]["cpu_s"], 2)
                               for action in ACTIONS} | {
            "stored bytes": round(measured["stored_bytes"]["one"] / measured["stored_bytes"]["six"], 2)},
    }

    def cell(layout: str, action: str) -> str:
        m = medians[layout][action]
        return f"{m['cpu_s']:.1f} s ({m['wall_s']:.1f}), {m['cpu_s'] / args.rows * 1e6:.1f} µs/row"

    lines = [f"# One ciphertext per row or one per direct identifier, {report['date']}", "",
             f"Produced by `{report['command']}` ({report['duration_s']:.0f} s): {args.rows:,} members of "
             f"dev/seed_members.py, {len(DIRECT_COLUMNS)} direct identifiers ({', '.join(DIRECT_COLUMNS)}), "
             f"{args.repeats} repeats interleaved, medians; JVM CPU seconds (wall in brackets) of local[2].", "",
             "| action | six ciphertexts | one ciphertext (JSON) | one / six (CPU) |", "|---|---|---|---|",
             *[f"| {a} | {cell('six', a)} | {cell('one', a)} | {report['ratio_one_over_six'][a]} |" for a in ACTIONS],
             f"| stored bytes (Parquet, snappy) | {measured['stored_bytes']['six']:,} | "
             f"{measured['stored_bytes']['one']:,} | {report['ratio_one_over_six']['stored bytes']} |", ""]
    write_result(args.out, "ciphertext-layout", report, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
