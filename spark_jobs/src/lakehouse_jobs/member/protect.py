"""Protection (member_merge step 7): direct identifiers encrypted, keyed hashes for joins and change
detection (lakehouse_jobs.pii), for the member tables and the quarantine."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_jobs import pii
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.member.schema import DIRECT_COLUMNS, MEMBER_COLUMNS, RULES_VERSION, SOURCE_COLUMNS
from lakehouse_jobs.tables import encrypted_name


def protect(df: DataFrame) -> DataFrame:
    """Valid standardised rows (MEMBER_COLUMNS + source_hash, with pii.with_keys' columns) as the analytics
    tables store them: member_id, email_hash, tables.MEMBER_ATTRIBUTES (direct identifiers encrypted),
    attribute_hash, source_hash."""
    return df.select(
        "member_id",
        # the join key: case-insensitive, as mailbox providers treat local parts in practice
        pii.keyed_hash(F.lower("email")).alias("email_hash"),
        *[pii.encrypt(c).alias(encrypted_name(c)) if c in DIRECT_COLUMNS else F.col(c) for c in MEMBER_COLUMNS[1:]],
        pii.row_hash(*MEMBER_COLUMNS[1:], version=RULES_VERSION).alias("attribute_hash"),
        "source_hash",
    )


def protect_quarantine(df: DataFrame) -> DataFrame:
    """split_valid_quarantine's quarantined rows (with pii.with_keys' columns) as member_quarantine stores
    them: the source's direct identifiers encrypted."""
    direct = {c.name for c in MEMBER.columns if c.pii == "direct"}
    return df.select(
        *[pii.encrypt(c).alias(encrypted_name(c)) if c in direct else F.col(c) for c in SOURCE_COLUMNS],
        "quarantine_reason", "quarantine_detail",
    )

