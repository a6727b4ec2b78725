"""The same-work contender of benchmarks.member_daily (issue 22): the notebook a strong engineer writes to
give the same tables as our member job, every day from scratch.

    spark-submit --master local[2] --driver-memory 4096m --properties-file <conf> \
        benchmarks/same_work_contender.py --database bench_daily --tables-root s3://bucket/same_work \
        --result /tmp/result.json

Our job (lakehouse_jobs.member.job, its docstring has the rules) reads a landed batch and works only on the
rows whose keyed hash changed. This notebook does the same work the plain way, with no change detection of
its own beyond what the standard MERGE patterns give: each day it re-reads and re-standardises every row.

1. Read `member` with Spark's JDBC source (MySQL Connector/J, the notebook contender's driver and fetchsize),
   partitioned on the key: `member_id` is a UUID string, which Spark's numeric partitioning cannot split,
   so the partitions are `predicates=` on key ranges by the first hex digit (16 index range scans of the
   primary key) plus one for whatever sorts outside 0-f (null, blank, not a UUID). The date is read as
   text, so that a date with no calendar equivalent (MySQL's 0000-00-00) reaches the rules as its text
   (registration_date_raw) instead of failing the read.
2. Clean with the job's rules through the same library functions (lakehouse_jobs.standardise, which calls
   phonenumbers, email-validator and pycountry) in pandas UDFs: one call per row for emails and phones,
   which real data does not repeat; countries, which repeat, resolved once per distinct value and joined
   back (broadcast), as our job does. Strings trimmed, blank -> null; member_id by lakehouse_jobs.keys.
3. Validate: the same quarantine reasons in the same order (duplicates by window functions), the
   quarantined rows replaced for today's batch id in `member_quarantine`, direct identifiers encrypted.
4. Protect: Spark's `aes_encrypt` (GCM) for the direct identifiers, HMAC-SHA-256 built from `sha2` for
   email_hash and attribute_hash, with the PII keys of our job's environment (lakehouse_jobs.pii: the keys
   travel as columns, never as literals in a plan).
5. `dim_member`: the standard staged-union SCD2 MERGE (Delta Lake docs, "slowly changing data (SCD) Type 2
   operation into Delta tables"): the changed members' rows once with a NULL merge key (they insert the new
   version) and every row keyed by member_id (it closes the current version when attribute_hash differs, or
   inserts a new member); a current version whose member left the source is closed (WHEN NOT MATCHED BY
   SOURCE). Members whose row is quarantined today keep their current version, as in our job.
6. `member`: one MERGE, updating a member whose attribute_hash differs, inserting new ones, deleting those
   that left the source.

On a first load (no table yet) both tables are created and appended to, as the plain notebook writes
instead of merging. The tables are our job's declarations (lakehouse_jobs.tables via delta.ensure_table:
same columns, constraints and properties), so the benchmark's checks compare them column by column.
Credentials from MYSQL_HOST, MYSQL_PORT, MYSQL_EXTRACT_USER, MYSQL_EXTRACT_PASSWORD; the PII keys from
LAKEHOUSE_PII_HMAC_KEY and LAKEHOUSE_PII_ENCRYPTION_KEY; S3A and Delta settings from spark-submit's
properties file. Writes the timings of its phases and its counts as JSON to --result.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

HEX = "0123456789abcdef"
# the source columns, in the contract's order, and the text of a date the rules check
SOURCE = ("member_id", "first_name", "last_name", "email", "phone_number", "address", "city", "country")
SOURCE_VERSION = "same-work-source-1"


def key_predicates() -> list[str]:
    """WHERE clauses that split the table by member_id, each row in exactly one: a range per first hex digit
    (the collation is case-insensitive, so upper-case ids fall in the same ranges), the last ones open-ended,
    and one for null and whatever sorts before '0'."""
    bounds = [f"member_id >= '{HEX[i]}'" + (f" AND member_id < '{HEX[i + 1]}'" if i + 1 < len(HEX) else "")
              for i in range(len(HEX))]
    return bounds + ["member_id IS NULL OR member_id < '0'"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--table", default="member")
    parser.add_argument("--tables-root", required=True, help="the Delta tables' folder (s3://bucket/prefix)")
    parser.add_argument("--fetchsize", type=int, default=10_000)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)

    from delta.tables import DeltaTable
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.storagelevel import StorageLevel

    from lakehouse_jobs import pii, standardise
    from lakehouse_jobs.delta import ensure_table
    from lakehouse_jobs.keys import UUID_PATTERN, member_key_column
    from lakehouse_jobs.member.schema import RULES_VERSION
    from lakehouse_jobs.tables import DIM_MEMBER, MEMBER_QUARANTINE, MEMBER_TABLE, OPEN_END

    spark = SparkSession.builder.appName("same_work_contender").getOrCreate()
    keys = pii.PiiKeys.from_env()
    now = datetime.now(timezone.utc)
    batch_id = f"extract_date={now:%Y-%m-%d}"
    paths = {t.name: f"{args.tables_root}/{t.name}" for t in (MEMBER_TABLE, DIM_MEMBER, MEMBER_QUARANTINE)}
    steps: dict[str, float] = {}
    mark = time.perf_counter()
    steps["session"] = round(mark - STARTED, 3)

    def step(name: str) -> None:
        nonlocal mark
        t = time.perf_counter()
        steps[name] = round(t - mark, 3)
        mark = t

    # 1. read, partitioned on the key
    host, port = os.environ.get("MYSQL_HOST", "127.0.0.1"), os.environ.get("MYSQL_PORT", "3306")
    url = f"jdbc:mysql://{host}:{port}/{args.database}"
    properties = {"user": os.environ["MYSQL_EXTRACT_USER"], "password": os.environ["MYSQL_EXTRACT_PASSWORD"],
                  "driver": "com.mysql.cj.jdbc.Driver", "fetchsize": str(args.fetchsize)}
    query = (f"(SELECT {', '.join(SOURCE)}, CAST(registration_date AS CHAR) AS registration_date_text "
             f"FROM {args.table}) AS m")
    raw = spark.read.jdbc(url, query, predicates=key_predicates(), properties=properties)
    parsed = F.try_to_timestamp("registration_date_text", F.lit("yyyy-MM-dd")).cast("date")
    raw = raw.select(*SOURCE, parsed.alias("registration_date"), "registration_date_text")
    raw = raw.select(*SOURCE, "registration_date",
                     F.when(F.col("registration_date").isNull(), F.col("registration_date_text"))
                     .alias("registration_date_raw"))
    source_columns = [*SOURCE, "registration_date", "registration_date_raw"]

    # 2. clean: the job's rules, through the same library functions
    def trimmed(c: str):
        return F.nullif(F.regexp_replace(F.col(c), r"^\s+|\s+$", ""), F.lit(""))

    country_udf = F.pandas_udf(standardise.country_codes, "string")
    phone_udf = F.pandas_udf(standardise.phones_e164, "string")
    email_udf = F.pandas_udf(standardise.emails_normalised, standardise.EMAIL_RESULT_TYPE)
    cleaned = raw.select(
        F.struct(*source_columns).alias("_raw"),
        member_key_column("member_id").alias("member_id"),
        *[trimmed(c).alias(c) for c in SOURCE[1:]],
        "registration_date",
    )
    countries = cleaned.where(F.col("country").isNotNull()).select("country").distinct()
    countries = F.broadcast(countries.withColumn("country_code", country_udf("country")))
    cleaned = (cleaned.join(countries, "country", "left")
               .withColumn("_email", email_udf("email"))
               .withColumn("phone_e164", phone_udf("phone_number", "country_code")))

    # 3. validate: the first reason that applies, in the job's order
    today = now.date()
    copy = F.row_number().over(Window.partitionBy("_raw").orderBy("member_id"))
    flagged = cleaned.withColumn("_copy", copy).withColumn(
        "_versions", F.sum((F.col("_copy") == 1).cast("int")).over(Window.partitionBy("member_id")))
    reason = F
    for condition, code in (
        (F.col("member_id").isNull(), "missing_member_id"),
        (~F.col("member_id").rlike(UUID_PATTERN), "invalid_member_id"),
        (F.col("_versions") > 1, "duplicate_member_id"),
        (F.col("_copy") > 1, "duplicate_row"),
        (F.col("_email.error").isNotNull(), "invalid_email"),
        (F.col("registration_date").isNull() & F.col("_raw.registration_date_raw").isNotNull(),
         "invalid_registration_date"),
        (F.col("registration_date").isNull(), "missing_registration_date"),
        (F.col("registration_date") > F.lit(today), "registration_date_in_future"),
        (F.col("registration_date") < F.lit("1900-01-01").cast("date"), "registration_date_too_old"),
    ):
        reason = reason.when(condition, code)
    flagged = pii.with_keys(spark, flagged.withColumn("quarantine_reason", reason), keys)

    # 4. protect: rows as the member tables hold them (the quarantined ones are encrypted apart, below)
    direct = ("first_name", "last_name", "email", "phone_number", "phone_e164", "address")
    attributes = ["first_name", "last_name", "email", "phone_number", "phone_e164", "address", "city", "country",
                  "country_code", "registration_date"]
    email = F.col("_email.email")
    plain = {c: email if c == "email" else F.col(c) for c in attributes}
    protected = flagged.select(
        "member_id", "quarantine_reason",
        pii.keyed_hash(F.lower(email)).alias("email_hash"),
        *[(pii.encrypt(plain[c]) if c in direct else plain[c]).alias(f"{c}_enc" if c in direct else c)
          for c in attributes],
        # the job's rules version: equal attributes give equal hashes in both tables
        pii.row_hash(*[plain[c].alias(c) for c in attributes], version=RULES_VERSION).alias("attribute_hash"),
        pii.row_hash(*[F.col(f"_raw.{c}").alias(c) for c in source_columns], version=SOURCE_VERSION)
        .alias("source_hash"),
        "_raw",
        F.when(F.col("quarantine_reason") == "invalid_email", F.col("_email.error"))
        .when(F.col("quarantine_reason") == "invalid_registration_date",
              F.concat(F.lit("not a calendar date: "), F.col("_raw.registration_date_raw")))
        .alias("quarantine_detail"),
    )
    # read and standardised once: the quarantine write and both MERGEs use it (on local disk, as our job's
    # materialise; plaintext only in _raw, the key columns are not kept)
    protected = protected.persist(StorageLevel.DISK_ONLY)
    counts = {r["quarantine_reason"]: r["count"] for r in protected.groupBy("quarantine_reason").count().collect()}
    step("read_clean_protect")

    valid = protected.where(F.col("quarantine_reason").isNull())
    bad = protected.where(F.col("quarantine_reason").isNotNull())
    quarantine_columns = [c for c in MEMBER_QUARANTINE.column_names if c not in ("batch_id", "quarantined_at")]
    quarantine = pii.with_keys(spark, bad, keys).select(
        *[pii.encrypt(F.col(f"_raw.{c.removesuffix('_enc')}")).alias(c) if c.endswith("_enc")
          else F.col(f"_raw.{c}").alias(c) for c in quarantine_columns if not c.startswith("quarantine_")],
        "quarantine_reason", "quarantine_detail",
        F.lit(batch_id).alias("batch_id"), F.current_timestamp().alias("quarantined_at"),
    ).select(*MEMBER_QUARANTINE.column_names)
    ensure_table(spark, MEMBER_QUARANTINE, paths["member_quarantine"])
    (quarantine.write.format("delta").mode("overwrite").option("replaceWhere", f"batch_id = '{batch_id}'")
     .save(paths["member_quarantine"]))
    step("quarantine")

    # members present today whose row is quarantined: left as they are (neither updated nor deleted)
    kept = (bad.where(F.col("member_id").isNotNull()).select("member_id").distinct()
            .join(valid.select("member_id"), "member_id", "left_anti"))
    member_columns = [c for c in MEMBER_TABLE.column_names if c not in ("_batch_id", "_updated_at")]
    rows = valid.select(*member_columns)
    at = F.lit(now).cast("timestamp")
    stamps = {"_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp()}

    # 5. dim_member, SCD type 2
    dim_first = not DeltaTable.isDeltaTable(spark, paths["dim_member"])
    ensure_table(spark, DIM_MEMBER, paths["dim_member"])
    version = {"valid_from": at, "valid_to": F.lit(OPEN_END).cast("timestamp"), "is_current": F.lit(True)}
    dim_attributes = [c for c in DIM_MEMBER.column_names if c in member_columns]
    if dim_first:
        (rows.select(*dim_attributes, *[v.alias(k) for k, v in (version | stamps).items()])
         .write.format("delta").mode("append").save(paths["dim_member"]))
        dim_action = "append"
    else:
        current = (spark.read.format("delta").load(paths["dim_member"]).where("is_current")
                   .select("member_id", F.col("attribute_hash").alias("_current_hash")))
        changed = rows.join(current, "member_id").where(F.col("_current_hash") != F.col("attribute_hash"))
        staged = (
            changed.select(F.lit(None).cast("string").alias("_merge_key"), *dim_attributes, F.lit(False).alias("_keep"))
            .unionByName(rows.select(F.col("member_id").alias("_merge_key"), *dim_attributes,
                                     F.lit(False).alias("_keep")))
            .unionByName(kept.select(F.col("member_id").alias("_merge_key"), "member_id", F.lit(True).alias("_keep")),
                         allowMissingColumns=True)
        )
        (DeltaTable.forPath(spark, paths["dim_member"]).alias("t")
         .merge(staged.alias("s"), "t.member_id = s._merge_key AND t.is_current")
         .whenMatchedUpdate(condition="NOT s._keep AND t.attribute_hash <> s.attribute_hash",
                            set={"valid_to": at, "is_current": F.lit(False), "_updated_at": F.current_timestamp()})
         .whenNotMatchedInsert(condition="NOT s._keep",
                               values={c: f"s.{c}" for c in dim_attributes} | version | stamps)
         .whenNotMatchedBySourceUpdate(condition="t.is_current",
                                       set={"valid_to": at, "is_current": F.lit(False),
                                            "_updated_at": F.current_timestamp()})
         .execute())
        dim_action = "merge"
    step(f"dim_member_{dim_action}")

    # 6. member, SCD type 1
    member_first = not DeltaTable.isDeltaTable(spark, paths["member"])
    ensure_table(spark, MEMBER_TABLE, paths["member"])
    if member_first:
        (rows.select(*member_columns, *[v.alias(k) for k, v in stamps.items()])
         .write.format("delta").mode("append").save(paths["member"]))
        member_action = "append"
    else:
        source = (rows.withColumn("_keep", F.lit(False))
                  .unionByName(kept.withColumn("_keep", F.lit(True)), allowMissingColumns=True))
        (DeltaTable.forPath(spark, paths["member"]).alias("t")
         .merge(source.alias("s"), "t.member_id = s.member_id")
         .whenMatchedUpdate(condition="NOT s._keep AND t.attribute_hash <> s.attribute_hash",
                            set={c: f"s.{c}" for c in member_columns} | stamps)
         .whenNotMatchedInsert(condition="NOT s._keep", values={c: f"s.{c}" for c in member_columns} | stamps)
         .whenNotMatchedBySourceDelete()
         .execute())
        member_action = "merge"
    step(f"member_{member_action}")
    protected.unpersist()
    spark.stop()
    with open(args.result, "w") as f:
        json.dump({"batch_id": batch_id, "partitions": len(key_predicates()), "partition_column": "member_id",
                   "rows": sum(counts.values()), "valid_rows": counts.get(None, 0),
                   "quarantine_reasons": {k: v for k, v in counts.items() if k is not None},
                   "actions": {"dim_member": dim_action, "member": member_action},
                   "steps_s": steps, "work_s": round(time.perf_counter() - STARTED - steps["session"], 3)}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
