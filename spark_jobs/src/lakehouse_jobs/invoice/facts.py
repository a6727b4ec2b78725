"""Facts (invoice_load step 8): fact_invoice and fact_invoice_line rows by column name, and their
MERGEs on invoice_number (+ line_number), a corrected re-issue replacing the old content."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.delta import retry_on_conflict, tagged_commit
from lakehouse_jobs.invoice.dimensions import date_key, normalised
from lakehouse_jobs.invoice.parse import LINE_TYPE
from lakehouse_jobs.invoice.tables import FACT_INVOICE, FACT_INVOICE_LINE
from lakehouse_jobs.steps import materialise


def header_rows(headers: DataFrame, members: DataFrame, batch_id: str) -> DataFrame:
    """fact_invoice's rows (its columns, in order) from dimension_keys' headers and resolve_members' rows:
    every column the headers hold under the fact's name is taken by name; these are derived."""
    derived = {
        "invoice_date_key": date_key(F.col("invoice_date")), "due_date_key": date_key(F.col("due_date")),
        "currency_code": F.col("currency"), "member_card_number": F.col("member_number"),
        "line_count": F.size("lines"), "_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp(),
    }
    h = headers.join(members, "invoice_number", "left")
    return h.select(*[derived.get(c, F.col(c)).alias(c) for c in FACT_INVOICE.column_names])


# what a line takes from its invoice's fact_invoice row: the columns both facts declare, but for the
# line's own amounts (its parts of the header's adjustments) and the lineage the line gets for itself
LINE_COLUMNS_FROM_HEADER = [
    c for c in FACT_INVOICE_LINE.column_names
    if c in FACT_INVOICE.column_names and c not in LINE_TYPE.fieldNames() and c not in ("_batch_id", "_updated_at")]


def line_rows(headers: DataFrame, facts: DataFrame, products: DataFrame, batch_id: str) -> DataFrame:
    """fact_invoice_line's rows (its columns, in order): the headers' lines, each with its invoice's keys
    (LINE_COLUMNS_FROM_HEADER, from header_rows' `facts`) and its product_key (`products`: product_key,
    product_nk)."""
    lines = headers.select("invoice_number", F.explode("lines").alias("l")).select("invoice_number", "l.*")
    lines = lines.withColumn("product_nk", normalised(F.col("description"))).join(products, "product_nk", "left")
    derived = {"_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp()}
    return lines.join(facts.select(*LINE_COLUMNS_FROM_HEADER), "invoice_number").select(
        *[derived.get(c, F.col(c)).alias(c) for c in FACT_INVOICE_LINE.column_names])


def merge_fact_invoice(spark: SparkSession, path: str, rows: DataFrame, commit_tag: str) -> tuple[int | None, dict]:
    """MERGE header_rows' `rows` into fact_invoice on invoice_number: new numbers inserted, a known number
    with another source_sha256 (a corrected re-issue) replaced, the same content left alone. (version or
    None when nothing changed, {"new": n, "replaced": n, "unchanged": n})."""
    def merge() -> tuple[int | None, dict]:
        current = spark.read.format("delta").load(path).select("invoice_number", F.col("source_sha256").alias("_t"))
        source = materialise(rows.join(current, "invoice_number", "left").withColumn(
            "_change", F.when(F.col("_t").isNull(), "new")
            .when(F.col("_t") != F.col("source_sha256"), "replaced").otherwise("unchanged")))
        counts = {"new": 0, "replaced": 0, "unchanged": 0} | {
            r["_change"]: r["count"] for r in source.groupBy("_change").count().collect()}
        if counts["new"] + counts["replaced"] == 0:
            return None, counts
        values = {c: f"s.{c}" for c in FACT_INVOICE.column_names}
        builder = (DeltaTable.forPath(spark, path).alias("t")
                   .merge(source.where("_change <> 'unchanged'").alias("s"), "t.invoice_number = s.invoice_number")
                   .whenMatchedUpdate(condition="t.source_sha256 <> s.source_sha256", set=values)
                   .whenNotMatchedInsert(values=values))
        return tagged_commit(spark, builder, path, commit_tag), counts

    return retry_on_conflict(merge, f"MERGE into {path}")


LINE_TYPES = {f.name: f.type for f in FACT_INVOICE_LINE.fields}


def merge_fact_invoice_line(spark: SparkSession, path: str, rows: DataFrame,
                            commit_tag: str) -> tuple[int | None, dict]:
    """MERGE line_rows' `rows` into fact_invoice_line so that each of their invoices has exactly these lines:
    on (invoice_number, line_number) a line of new content is inserted or replaces the old one, and the old
    content's lines beyond the re-issue's are deleted (one MERGE: the deletions are source rows too, found
    among the lines of the touched invoices only). Lines of content already loaded stay untouched.
    (version or None when nothing changed, {"inserted", "updated", "deleted"})."""
    def merge() -> tuple[int | None, dict]:
        touched = rows.select("invoice_number").distinct()
        existing = (spark.read.format("delta").load(path).join(touched, "invoice_number", "left_semi")
                    .select("invoice_number", "line_number", F.col("source_sha256").alias("_t")))
        upserts = (rows.join(existing, ["invoice_number", "line_number"], "left")
                   .where(F.col("_t").isNull() | (F.col("_t") != F.col("source_sha256")))
                   .withColumn("_op", F.when(F.col("_t").isNull(), "insert").otherwise("update")).drop("_t"))
        deletes = existing.join(rows.select("invoice_number", "line_number"), ["invoice_number", "line_number"],
                                "left_anti").select(
            *[F.col(c) if c in ("invoice_number", "line_number") else F.lit(None).cast(LINE_TYPES[c]).alias(c)
              for c in FACT_INVOICE_LINE.column_names],
            F.lit("delete").alias("_op"))
        source = materialise(upserts.unionByName(deletes))
        counts = {"insert": 0, "update": 0, "delete": 0} | {
            r["_op"]: r["count"] for r in source.groupBy("_op").count().collect()}
        counts = {"inserted": counts["insert"], "updated": counts["update"], "deleted": counts["delete"]}
        if not any(counts.values()):
            return None, counts
        values = {c: f"s.{c}" for c in FACT_INVOICE_LINE.column_names}
        builder = (DeltaTable.forPath(spark, path).alias("t")
                   .merge(source.alias("s"),
                          "t.invoice_number = s.invoice_number AND t.line_number = s.line_number")
                   .whenMatchedDelete(condition="s._op = 'delete'")
                   .whenMatchedUpdate(condition="s._op <> 'delete' AND t.source_sha256 <> s.source_sha256",
                                      set=values)
                   .whenNotMatchedInsert(condition="s._op <> 'delete'", values=values))
        return tagged_commit(spark, builder, path, commit_tag), counts

    return retry_on_conflict(merge, f"MERGE into {path}")
