"""Every Delta table of the lakehouse, declared once: columns, NOT NULL and CHECK constraints, table
properties and clustering. The jobs create the tables from these declarations (``ensure_table``), the
Unity Catalog DDL is generated from them (lakehouse_jobs.unity_catalog), and
tests/spark_jobs/test_tables.py compares them with the tables the jobs created.

Choices shared by every table (docs/pii.md and docs/delta-tables.md give the reasoning and numbers):
- Deletion vectors on: a MERGE that changes 5% of the rows marks them deleted and writes only the new
  versions, instead of rewriting every data file that holds one of them (member ids are random UUIDs, so
  5% of the rows touch nearly every file).
- Log retention 30 days (Delta's default, kept explicit): time travel and the audit trail reach back a
  month. Deleted-file retention 7 days (the default): VACUUM never removes files a reader younger than a
  week may still need; only the erasure path goes below it, on purpose.
- Change data feed off: no consumer reads row-level changes (dim_member is itself the history), and every
  change file would be one more copy of personal data to erase.
- Statistics only on columns that identify nobody (``delta.dataSkippingStatsColumns``): Delta keeps each
  file's min/max per column in its log, which is retained for 30 days and cannot be purged like a data
  file, so member ids or hashes there would outlive an erasure; and min/max of random UUIDs or hashes
  skips nothing anyway.
- No liquid clustering or partitioning: at 5M members (a few hundred MB) a table is a handful of files;
  keys are random UUIDs, so clustering on member_id cannot prune a MERGE whose changed keys are spread
  over every file, and partitioning a table this size only makes small files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lakehouse_jobs.contracts import MEMBER, PiiClass
from lakehouse_jobs.keys import UUID_PATTERN

# the open end of the current row's validity in dim_member (Kimball: a far-future date, not null, so
# that "as of" joins need no null handling)
OPEN_END = "9999-12-31 00:00:00"

COMMON_PROPERTIES = {
    "delta.enableDeletionVectors": "true",
    "delta.logRetentionDuration": "interval 30 days",
    "delta.deletedFileRetentionDuration": "interval 7 days",
    "delta.enableChangeDataFeed": "false",
}

SqlType = Literal["STRING", "BINARY", "DATE", "TIMESTAMP", "BIGINT", "BOOLEAN", "INT",
                  # the invoice tables' money, quantities and rates (lakehouse_jobs.invoice.tables)
                  "DECIMAL(18,2)", "DECIMAL(18,6)", "DECIMAL(9,6)", "DECIMAL(18,10)"]


@dataclass(frozen=True)
class Field:
    name: str
    type: SqlType
    nullable: bool = True
    pii: PiiClass = "none"
    comment: str = ""
    identity: bool = False  # GENERATED ALWAYS AS IDENTITY (a surrogate key)


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    fields: tuple[Field, ...]
    constraints: dict[str, str] = field(default_factory=dict)  # name -> CHECK expression (Spark SQL)
    properties: dict[str, str] = field(default_factory=lambda: dict(COMMON_PROPERTIES))
    stats_columns: tuple[str, ...] | None = None  # None: Delta's default (the first 32 columns)
    cluster_by: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def table_properties(self) -> dict[str, str]:
        """`properties`, plus the statistics columns when declared."""
        stats = {"delta.dataSkippingStatsColumns": ",".join(self.stats_columns)} if self.stats_columns else {}
        return self.properties | stats

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def schema_ddl(self) -> str:
        """The columns as a Spark DDL schema string ("`a` STRING, `b` BIGINT"), for rows built in Python
        (``spark.createDataFrame([{column: value}], spec.schema_ddl)`` places values by column name)."""
        return ", ".join(f"`{f.name}` {f.type}" for f in self.fields)

    def create_table_sql(self, name: str | None = None) -> str:
        """The declaration as one Databricks SQL statement, for a reader (docs/invoice-star-schema.md prints
        the invoice tables' with dev/invoice_ddl_doc.py) or for creating the table in a catalog; the jobs
        create it with lakehouse_jobs.delta.ensure_table, which declares the same::

            CREATE TABLE IF NOT EXISTS <name> (
              <column> <TYPE> [NOT NULL] [GENERATED ALWAYS AS IDENTITY] [COMMENT '<comment>'],
              ...
            )
            USING DELTA
            [CLUSTER BY (<column>, ...)]
            COMMENT '<description>'
            TBLPROPERTIES (
              '<property>' = '<value>', ...,
              'delta.constraints.<name>' = '<CHECK expression>', ...
            )

        `name` defaults to the table's own (``main.lakehouse.fact_invoice`` or ``delta.`<path>``` also fit).
        No trailing semicolon."""
        def column(f: Field) -> str:
            return " ".join([f.name, f.type, *(["NOT NULL"] if not f.nullable else []),
                             *(["GENERATED ALWAYS AS IDENTITY"] if f.identity else []),
                             *([f"COMMENT {sql_string(f.comment)}"] if f.comment else [])])
        # CHECK constraints as ensure_table declares them at creation: table properties
        properties = self.table_properties | {
            f"delta.constraints.{n.lower()}": expression for n, expression in self.constraints.items()}
        lines = [f"CREATE TABLE IF NOT EXISTS {name or self.name} (",
                 ",\n".join(f"  {column(f)}" for f in self.fields), ")", "USING DELTA",
                 *([f"CLUSTER BY ({', '.join(self.cluster_by)})"] if self.cluster_by else []),
                 f"COMMENT {sql_string(self.description)}", "TBLPROPERTIES (",
                 ",\n".join(f"  {sql_string(k)} = {sql_string(v)}" for k, v in properties.items()), ")"]
        return "\n".join(lines)


def sql_string(text: str) -> str:
    """`text` as a Spark SQL string literal. Spark escapes with a backslash: it reads 'it''s' as the two
    literals 'it' and 's', concatenated to "its"."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def encrypted_name(column: str) -> str:
    return f"{column}_enc"


def _protected(columns: list[tuple[str, str, PiiClass, str]]) -> tuple[Field, ...]:
    """Fields for (name, SQL type, PII class, comment): a direct identifier becomes `<name>_enc`
    BINARY (AES-256-GCM ciphertext, lakehouse_jobs.pii); anything else keeps its name and type."""
    return tuple(
        Field(encrypted_name(name), "BINARY", pii=pii, comment=f"{comment}, AES-256-GCM ciphertext")
        if pii == "direct" else Field(name, sql_type, pii=pii, comment=comment)
        for name, sql_type, pii, comment in columns
    )


_SQL_TYPES = {"string": "STRING", "date": "DATE", "timestamp": "TIMESTAMP"}


def _contract_column(name: str) -> tuple[str, str, PiiClass, str]:
    column = next(c for c in MEMBER.columns if c.name == name)
    return name, _SQL_TYPES[column.type], column.pii, column.description


# The member attributes the analytics tables keep, in order: the contract's columns (direct identifiers
# encrypted) plus the standardised forms the job derives.
MEMBER_ATTRIBUTES = _protected([
    _contract_column("first_name"),
    _contract_column("last_name"),
    ("email", "STRING", "direct", "email address, normalised by email-validator"),
    _contract_column("phone_number"),
    ("phone_e164", "STRING", "direct", "phone number in E.164, or null when it cannot be read with certainty"),
    _contract_column("address"),
    _contract_column("city"),
    _contract_column("country"),
    ("country_code", "STRING", "quasi", "ISO 3166-1 alpha-2 code (or XK) of country, or null when unknown"),
    _contract_column("registration_date"),
])

_HEX64 = "^[0-9a-f]{64}$"
_EMAIL_HASH = Field("email_hash", "STRING", pii="quasi",
                    comment="HMAC-SHA-256 (hex) of the lower-cased normalised email: the join key for email")
_ATTRIBUTE_HASH = Field("attribute_hash", "STRING", nullable=False,
                        comment="HMAC-SHA-256 (hex) of the standardised attributes: SCD2 change detection")
_MEMBER_CHECKS = {
    "member_id_is_uuid": f"member_id RLIKE '{UUID_PATTERN}'",
    "email_hash_is_hmac": f"email_hash IS NULL OR email_hash RLIKE '{_HEX64}'",
    "attribute_hash_is_hmac": f"attribute_hash RLIKE '{_HEX64}'",
    "registration_date_from_1900": "registration_date >= DATE'1900-01-01'",
}

MEMBER_TABLE = TableSpec(
    name="member",
    description="Current state of every member (SCD type 1): one row per member_id present in the latest "
                "applied snapshot whose row passed validation at least once.",
    fields=(
        Field("member_id", "STRING", nullable=False, comment="UUID of the member, lower case (business key)"),
        _EMAIL_HASH,
        *MEMBER_ATTRIBUTES,
        _ATTRIBUTE_HASH,
        Field("source_hash", "STRING", nullable=False,
              comment="HMAC-SHA-256 (hex) of the source row as landed and the rules version: an unchanged "
                      "source row is not processed again"),
        Field("_batch_id", "STRING", nullable=False, comment="the batch that last changed the row"),
        Field("_updated_at", "TIMESTAMP", nullable=False, comment="when that change was committed"),
    ),
    constraints={**_MEMBER_CHECKS, "source_hash_is_hmac": f"source_hash RLIKE '{_HEX64}'"},
    stats_columns=("country_code", "registration_date", "_batch_id", "_updated_at"),
)

DIM_MEMBER = TableSpec(
    name="dim_member",
    description="Member dimension, SCD type 2: one row per member and version of its attributes, valid "
                "from the extraction time of the batch that brought it until the next version's (or the "
                "member's deletion at the source).",
    fields=(
        Field("member_sk", "BIGINT", nullable=False, identity=True, comment="surrogate key"),
        Field("member_id", "STRING", nullable=False, comment="UUID of the member, lower case (business key)"),
        _EMAIL_HASH,
        *MEMBER_ATTRIBUTES,
        _ATTRIBUTE_HASH,
        Field("valid_from", "TIMESTAMP", nullable=False,
              comment="extraction time (UTC) of the batch that brought this version"),
        Field("valid_to", "TIMESTAMP", nullable=False,
              comment=f"extraction time of the batch that replaced or deleted it; {OPEN_END} while current"),
        Field("is_current", "BOOLEAN", nullable=False, comment="true for the version valid now"),
        Field("_batch_id", "STRING", nullable=False, comment="the batch that opened this version"),
        Field("_updated_at", "TIMESTAMP", nullable=False, comment="when the row was last written"),
    ),
    constraints={
        **_MEMBER_CHECKS,
        "valid_range": "valid_from < valid_to",
        "current_is_open": f"is_current = (valid_to = TIMESTAMP'{OPEN_END}')",
    },
    # "as of" joins prune on the validity columns
    stats_columns=("valid_from", "valid_to", "country_code", "registration_date", "_batch_id"),
)

QUARANTINE_REASONS = (
    "missing_member_id", "invalid_member_id", "duplicate_member_id", "duplicate_row", "invalid_email",
    "invalid_registration_date", "missing_registration_date", "registration_date_in_future",
    "registration_date_too_old",
)

MEMBER_QUARANTINE = TableSpec(
    name="member_quarantine",
    description="Source rows that failed validation, one row per rejected row and batch, as landed (direct "
                "identifiers encrypted) with the reason; a rerun of a batch replaces its verdicts on the rows it "
                "evaluated again.",
    fields=(
        Field("member_id", "STRING", comment="member_id as landed (may be missing or malformed)"),
        *_protected([_contract_column(c.name) for c in MEMBER.columns if c.name != "member_id"]),
        Field("registration_date_raw", "STRING", pii="quasi",
              comment="source text of a registration_date with no calendar equivalent"),
        Field("quarantine_reason", "STRING", nullable=False, comment="the first rule the row failed"),
        Field("quarantine_detail", "STRING", comment="what exactly is wrong, without the value itself"),
        Field("batch_id", "STRING", nullable=False, comment="the batch the row came in"),
        Field("quarantined_at", "TIMESTAMP", nullable=False, comment="when it was quarantined"),
    ),
    constraints={
        "known_reason": "quarantine_reason IN ({})".format(", ".join(f"'{r}'" for r in QUARANTINE_REASONS)),
    },
    # a rerun replaces its batch's verdicts: batch_id prunes that MERGE
    stats_columns=("batch_id", "quarantine_reason", "quarantined_at"),
)

MEMBER_BATCHES = TableSpec(
    name="member_batches",
    description="One row per run that applied a member batch to member and dim_member (a rerun of a batch "
                "adds its own row): the ordering guard (history only moves forward) and the audit trail of "
                "what each run changed.",
    fields=(
        Field("batch_id", "STRING", nullable=False, comment="the batch"),
        Field("extracted_at", "TIMESTAMP", nullable=False, comment="its extraction time (UTC)"),
        Field("applied_at", "TIMESTAMP", nullable=False, comment="when it was applied"),
        Field("member_version", "BIGINT", comment="the member table's MERGE commit, null when nothing changed"),
        Field("dim_member_version", "BIGINT", comment="dim_member's MERGE commit, null when nothing changed"),
        Field("result", "STRING", nullable=False, comment="the job's result JSON (counts; no personal data)"),
    ),
)

ERASURE_REQUESTS = TableSpec(
    name="erasure_requests",
    description="One row per erasure request (GDPR Art. 17): who, only as a keyed hash, when, and what was "
                "removed where. Holds no member id and no personal data.",
    fields=(
        Field("request_hash", "STRING", nullable=False, pii="quasi",
              comment="HMAC-SHA-256 (hex) of the erased member_id: a rerun finds its request"),
        Field("first_requested_at", "TIMESTAMP", nullable=False, comment="when the request was first run"),
        Field("completed_at", "TIMESTAMP", nullable=False, comment="when a run last completed it"),
        Field("request_id", "STRING", nullable=False, comment="the Airflow run that last completed it"),
        Field("removed", "STRING", nullable=False,
              comment="JSON: rows removed per table and landing files rewritten, by the run that removed them"),
    ),
    constraints={"request_hash_is_hmac": f"request_hash RLIKE '{_HEX64}'"},
)

TABLES = {t.name: t for t in (MEMBER_TABLE, DIM_MEMBER, MEMBER_QUARANTINE, MEMBER_BATCHES, ERASURE_REQUESTS)}
# the tables holding personal data of members, which an erasure purges
MEMBER_PII_TABLES = (MEMBER_TABLE, DIM_MEMBER, MEMBER_QUARANTINE)
