"""Cleaning (member_merge step 4): the rules of lakehouse_jobs.member.job's docstring applied to a
batch's rows; the per-row Python rules themselves live in lakehouse_jobs.standardise."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_jobs import pii, standardise
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.keys import member_key_column
from lakehouse_jobs.member.schema import BROADCAST_KEYS_MAX, MEMBER_COLUMNS, SOURCE_COLUMNS
from lakehouse_jobs.steps import materialise

# a garbled source could name millions of "countries"; past this the lookup is joined without broadcasting
COUNTRY_LOOKUP_BROADCAST_ROWS = 100_000


def trimmed(column: str) -> Column:
    """Leading and trailing whitespace removed; blank becomes null. Nothing else changes, so text in any
    script keeps its exact bytes."""
    # Spark's trim() strips spaces only; tabs and newlines from sloppy sources count as blank too
    return F.nullif(F.regexp_replace(F.col(column), r"^\s+|\s+$", ""), F.lit(""))


def known_phones(table: DataFrame, batches: DataFrame, keys: DataFrame, rules_version: str) -> DataFrame:
    """What the member table holds of some members' phones: (member_id, phone_number, country_code, phone_e164)
    in plaintext, for clean_members to reuse where neither the phone nor the resolved country changed.

    table: the member table at the version the plan read, with pii.with_keys' columns. batches: member_batches.
    keys: the members (``_key``), those of changed rows. rules_version: the rules this run standardises with
    (change_state.state_rules_version: the contract's and the rule libraries' versions).
    Only rows whose batch (``_batch_id``, the batch that last changed the row) every run applied with
    `rules_version` (``rules_version`` of the result member_batches keeps; a run before it was recorded counts
    as other rules): a phone standardised by other rules or another phonenumbers release is read again.
    A member_id held twice (a broken table) gives nothing.
    """
    same_rules = (
        batches.groupBy(F.col("batch_id").alias("_batch_id"))
        .agg(F.min(F.coalesce(F.get_json_object("result", "$.rules_version") == rules_version, F.lit(False))
                   .cast("int")).alias("_same"))
        .where("_same = 1").select("_batch_id")
    )
    keys = F.broadcast(keys) if keys.count() <= BROADCAST_KEYS_MAX else keys
    rows = (table.join(keys, table["member_id"] == keys["_key"], "left_semi")
            .join(F.broadcast(same_rules), "_batch_id", "left_semi"))
    return rows.groupBy("member_id").agg(
        F.count(F.lit(1)).alias("_copies"),
        F.first(pii.decrypt("phone_number_enc")).alias("phone_number"),
        F.first("country_code").alias("country_code"),
        F.first(pii.decrypt("phone_e164_enc")).alias("phone_e164"),
    ).where("_copies = 1").drop("_copies")


def clean_members(df: DataFrame, known: DataFrame | None = None) -> DataFrame:
    """Normalised member rows (module docstring): MEMBER_COLUMNS, plus ``_raw``, the source row as read, for
    quarantine, and ``_email_error``, email-validator's reason when the address is invalid (``email`` is
    then null), else null. A ``source_hash`` column of `df` is carried along.

    known: known_phones' rows. A row whose trimmed phone_number and country_code equal its member's there
    keeps that phone_e164 instead of calling phonenumbers (62 µs a value: benchmarks/results/rule-costs-2026-12-07.md):
    the rule's answer for the same inputs under the same rules."""
    carried = [c for c in ("source_hash",) if c in df.columns]
    df = df.select(*SOURCE_COLUMNS, *carried)
    # wrapped here rather than at import: pandas_udf() needs a SparkSession, which workers lack
    country_code_udf = F.pandas_udf(standardise.country_codes, "string")
    phone_e164_udf = F.pandas_udf(standardise.phones_e164, "string")
    email_udf = F.pandas_udf(standardise.emails_normalised, standardise.EMAIL_RESULT_TYPE)
    cleaned = df.select(
        F.struct(*SOURCE_COLUMNS).alias("_raw"),
        *[(member_key_column(c) if c == "member_id" else trimmed(c)).alias(c)
          for c in MEMBER.column_names if c != "registration_date"],
        "registration_date",
        *carried,
    )
    # A batch names a few hundred countries: each is resolved once, and the codes reach the rows by a join
    # with that small table, broadcast, instead of a Python call per row.
    lookup = materialise(cleaned.where(F.col("country").isNotNull()).select("country").distinct()
                         .withColumn("country_code", country_code_udf("country")))
    if lookup.count() <= COUNTRY_LOOKUP_BROADCAST_ROWS:
        lookup = F.broadcast(lookup)
    cleaned = cleaned.join(lookup, "country", "left")
    if known is None:
        cleaned = cleaned.withColumn("phone_e164", phone_e164_udf("phone_number", "country_code"))
    else:
        # two branches, not a CASE: Spark evaluates a Python UDF on every row of its plan node, whatever
        # condition wraps it
        known = known.select(*[F.col(c).alias(f"_known_{c}") for c in known.columns])
        cleaned = materialise(cleaned)  # once: both branches read it
        cleaned = cleaned.join(known, cleaned["member_id"] == known["_known_member_id"], "left")
        same = (F.col("_known_member_id").isNotNull() & F.col("_known_phone_number").eqNullSafe(F.col("phone_number"))
                & F.col("_known_country_code").eqNullSafe(F.col("country_code")))
        kept = cleaned.where(same).withColumn("phone_e164", F.col("_known_phone_e164"))
        fresh = cleaned.where(~same).withColumn("phone_e164", phone_e164_udf("phone_number", "country_code"))
        cleaned = kept.unionByName(fresh).drop(*known.columns)
    cleaned = cleaned.withColumn("_email", email_udf("email"))
    return cleaned.select(
        *[F.col("_email.email").alias("email") if c == "email" else c for c in MEMBER_COLUMNS],
        "_raw",
        F.col("_email.error").alias("_email_error"),
        *carried,
    )

