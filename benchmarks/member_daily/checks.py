"""Correctness after every load: what each contender's table holds, counted with Spark and compared with
MySQL's live table by checksums. Nothing is trusted from the writer; nothing here is timed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.member_daily.contenders import tables

if TYPE_CHECKING:
    from benchmarks.member_daily.runner import Bench


class Checker:
    """Counts what each contender's table holds, with Spark (Delta on S3A, the stack's conf), in this process:
    every table is read whole, nothing trusted from the writer. Never timed."""

    def __init__(self, driver_memory: str = "2g"):
        self._spark = None
        self._owned = False
        self.driver_memory = driver_memory

    @property
    def spark(self):
        if self._spark is None:
            import logging

            from pyspark.sql import SparkSession

            from dev.local_spark import local_spark_conf

            logging.getLogger("py4j").setLevel(logging.WARNING)
            self._spark = SparkSession.getActiveSession()  # a test session's, with the same conf: used, not stopped
            if self._spark is not None:
                return self._spark
            self._owned = True
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = (SparkSession.builder.master("local[2]").appName("member_daily_bench checks")
                       .config("spark.driver.memory", self.driver_memory)
                       .config("spark.ui.showConsoleProgress", "false").config("spark.log.level", "ERROR"))
            for key, value in local_spark_conf().items():
                builder = builder.config(key, value)
            self._spark = builder.getOrCreate()
            self._spark.sparkContext.setLogLevel("ERROR")
        return self._spark

    def stop(self) -> None:
        if self._spark is not None and self._owned:
            self._spark.stop()

    @staticmethod
    def _hash(col):
        from pyspark.sql import functions as F

        return F.conv(F.substring(F.md5(col), 1, 15), 16, 10).cast("decimal(38,0)")

    def row_text(self):
        from pyspark.sql import functions as F

        from lakehouse_jobs.contracts import MEMBER

        return F.concat_ws("\x1f", *[
            F.coalesce(F.date_format(c.name, "yyyy-MM-dd") if c.type == "date" else F.col(c.name), F.lit("\\N"))
            for c in MEMBER.columns])

    def ids(self, df) -> dict:
        from pyspark.sql import functions as F

        r = df.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("member_id").alias("distinct"),
                   F.sum(self._hash(F.col("member_id"))).alias("id_sum")).first()
        return {"rows": r["rows"], "distinct": r["distinct"], "id_sum": int(r["id_sum"] or 0)}

    def plaintext(self, uri: str, changed_ids: str) -> dict:
        from pyspark.sql import functions as F

        df = self.spark.read.format("delta").load(uri)
        facts = self.ids(df)
        facts["value_sum"] = int(df.agg(F.sum(self._hash(self.row_text()))).first()[0] or 0)
        changed = self.spark.read.parquet(changed_ids)
        r = df.join(changed, "member_id").agg(F.count(F.lit(1)), F.sum(self._hash(self.row_text()))).first()
        facts["changed_rows"], facts["changed_value_sum"] = r[0], int(r[1] or 0)
        return facts

    def ours(self, root: str, batch_id: str) -> dict:
        from pyspark.sql import functions as F

        member = self.spark.read.format("delta").load(f"{root}/member").select("member_id")
        quarantine = (self.spark.read.format("delta").load(f"{root}/member_quarantine")
                      .where(F.col("batch_id") == batch_id).select("member_id"))
        dim = self.spark.read.format("delta").load(f"{root}/dim_member")
        current = dim.where("is_current").select("member_id")
        return {"member": self.ids(member), "quarantine": self.ids(quarantine),
                "present": self.ids(member.union(quarantine)), "dim_member_rows": dim.count(),
                "dim_member_current": self.ids(current)}

    def content(self, root: str, batch_id: str) -> dict:
        """What a member job's tables hold, comparable between ours and the same-work notebook's whatever
        their ciphertexts (random IVs) and timestamps: per column, the sum of a hash of (member_id, value)
        over member's rows, the direct identifiers decrypted with the PII keys of the environment
        (lakehouse_jobs.pii); the same over dim_member's current rows, plus its row count and the number
        of versions of each member (summed as hashes of (member_id, count)); the batch's quarantined rows
        by reason. A column a table lacks counts as a difference."""
        from pyspark.sql import functions as F

        from lakehouse_jobs import pii
        from lakehouse_jobs.tables import MEMBER_ATTRIBUTES

        keys = pii.PiiKeys.from_env()
        columns = ["email_hash", *[f.name for f in MEMBER_ATTRIBUTES]]

        def sums(df) -> dict:
            df = pii.with_keys(self.spark, df, keys)
            exprs = []
            for c in columns:
                if c not in df.columns:
                    continue
                value = pii.decrypt(c) if c.endswith("_enc") else F.col(c).cast("string")
                exprs.append(F.sum(self._hash(F.concat_ws("\x1f", "member_id", F.coalesce(value, F.lit("\\N")))))
                             .alias(c))
            row = df.agg(F.count(F.lit(1)).alias("_rows"), *exprs).first().asDict()
            return {c: int(row[c] or 0) if c in row else "missing" for c in ["_rows", *columns]}

        member = self.spark.read.format("delta").load(f"{root}/member")
        dim = self.spark.read.format("delta").load(f"{root}/dim_member")
        versions = dim.groupBy("member_id").count().agg(
            F.sum(self._hash(F.concat_ws("\x1f", "member_id", F.col("count").cast("string"))))).first()[0]
        quarantine = (self.spark.read.format("delta").load(f"{root}/member_quarantine")
                      .where(F.col("batch_id") == batch_id).groupBy("quarantine_reason").count().collect())
        return {"member": sums(member), "dim_member_current": sums(dim.where("is_current")),
                "dim_member": {"rows": dim.count(), "versions_per_member": int(versions or 0)},
                "quarantine": {r["quarantine_reason"]: r["count"] for r in quarantine}}


def compare_contents(bench: Bench, contender: str, step: str, rows: int, found: dict) -> list[dict]:
    """Checks that `found` (Checker.content of `contender`'s tables after `step`) equals what ours or the
    same-work notebook held after the same load, when one of them loaded it earlier in this run; records it."""
    seen = bench.contents.setdefault((rows, step), {})
    out = []
    for other, theirs in seen.items():
        if other == contender:
            continue
        for part in ("member", "dim_member_current", "dim_member", "quarantine"):
            keys = sorted(set(theirs[part]) | set(found[part]), key=str)
            differ = [k for k in keys if theirs[part].get(k) != found[part].get(k)]
            out.append(check(f"{part}: same content as {other}'s (per-column checksums"
                             f"{', decrypted' if part.startswith('member') or part.endswith('current') else ''})"
                             f"; columns that differ", [], differ))
        break  # one reference is enough: the others were compared with it when they loaded
    seen.setdefault(contender, found)
    return out


def check(name: str, expected: Any, found: Any) -> dict:
    return {"check": name, "expected": expected, "found": found, "ok": expected == found}


def check_load(bench: Bench, contender: str, step: str, rows: int, run: dict) -> list[dict]:
    state = "B" if step == "change" else "A"
    want = bench.source.facts(rows, state)
    lake = f"s3://{bench.store.lakehouse}"
    out = []
    if contender in ("dag", "job", "same_work"):
        root = f"{lake}/{'same_work' if contender == 'same_work' else 'delta'}"
        found = bench.checker.ours(root, run["batch_id"])
        present, member, current = found["present"], found["member"], found["dim_member_current"]
        out += [check("member + quarantined rows = source rows", want["rows"],
                      member["rows"] + found["quarantine"]["rows"]),
                check("member_id set (checksum) of member + quarantine = source's", want["id_sum"],
                      present["id_sum"]),
                check("distinct member_id in member + quarantine", want["rows"], present["distinct"]),
                check("dim_member: one current row per member", member["rows"], current["distinct"]),
                check("dim_member: current rows", member["rows"], current["rows"]),
                check("dim_member: current member_id set = member's", member["id_sum"], current["id_sum"])]
        if step == "first":
            bench.size.setdefault("dim_after_first", {})[contender] = found["dim_member_rows"]
        elif step == "replay" and contender == "same_work":
            # it re-reads and MERGEs every day: what it must not do is add a version for an unchanged member
            out.append(check("replay adds no dim_member version", bench.size["dim_after_first"][contender],
                             found["dim_member_rows"]))
        elif step == "replay":
            for t in ("member", "dim_member"):
                out.append(check(f"replay commits nothing to {t}", 0, run["commits"][t]["commits"]))
        else:
            out.append(check("dim_member rows: first load + changed members",
                             bench.size.get("dim_after_first", {}).get(contender, 0) + want["changed_rows"],
                             found["dim_member_rows"]))
        if "same_work" in bench.contenders:
            out += compare_contents(bench, contender, step, rows, bench.checker.content(root, run["batch_id"]))
        if contender == "same_work":
            facts = run["contender_facts"]
            out.append(check("its own count of quarantined rows = the quarantine table's", found["quarantine"]["rows"],
                             sum(facts["quarantine_reasons"].values())))
            return out
        if run.get("databricks", {}).get("state") == "SKIPPED":  # an unchanged day: the DAG ran no job
            manifest = bench.store.json(bench.store.landing, f"member/{run['batch_id']}/_manifest.json") or {}
            counts = (manifest.get("change_set") or {}).get("counts") or {}
            run["job_result"] = None
            out.append(check("no job run: the change set holds no change", want["rows"], counts.get("unchanged")))
            return out
        result = bench.store.json(bench.store.lakehouse, f"_results/member/{run['batch_id']}.json") or {}
        run["job_result"] = {k: result.get(k) for k in ("manifest_rows", "unchanged_rows", "valid_rows",
                                                         "quarantined_rows", "deleted_rows")}
        if step == "change":
            out.append(check("job result: changed rows processed", want["changed_rows"], result.get("valid_rows")))
        elif step == "replay":
            out.append(check("job result: no row processed again", 0, result.get("valid_rows")))
    else:
        uri = f"{lake}/{tables(contender)[0]}"
        found = bench.checker.plaintext(uri, str(changed_ids_file(bench, rows)))
        out += [check("rows = source rows", want["rows"], found["rows"]),
                check("distinct member_id = source rows", want["rows"], found["distinct"]),
                check("member_id set (checksum) = source's", want["id_sum"], found["id_sum"]),
                check("every row's values (checksum) = source's", want["value_sum"], found["value_sum"])]
        if step == "change":
            out.append(check("changed members' values (checksum) = source's", want["changed_value_sum"],
                             found["changed_value_sum"]))
    return out


def changed_ids_file(bench: Bench, rows: int) -> Path:
    path = bench.tmp / f"changed-{rows}.parquet"
    if not path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"member_id": pa.array(bench.source.changed_ids(rows), pa.string())}), path)
    return path
