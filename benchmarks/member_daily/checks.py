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


def check(name: str, expected: Any, found: Any) -> dict:
    return {"check": name, "expected": expected, "found": found, "ok": expected == found}


def check_load(bench: Bench, contender: str, step: str, rows: int, run: dict) -> list[dict]:
    state = "B" if step == "change" else "A"
    want = bench.source.facts(rows, state)
    lake = f"s3://{bench.store.lakehouse}"
    out = []
    if contender in ("dag", "job"):
        found = bench.checker.ours(f"{lake}/delta", run["batch_id"])
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
            bench.size["dim_after_first"] = found["dim_member_rows"]
        elif step == "replay":
            for t in ("member", "dim_member"):
                out.append(check(f"replay commits nothing to {t}", 0, run["commits"][t]["commits"]))
        else:
            out.append(check("dim_member rows: first load + changed members", bench.size.get("dim_after_first", 0)
                             + want["changed_rows"], found["dim_member_rows"]))
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
