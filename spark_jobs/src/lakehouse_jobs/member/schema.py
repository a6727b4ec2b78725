"""The member job's column lists and rules version, derived from the contract and the table declarations."""

from __future__ import annotations

from lakehouse_jobs.contracts import MEMBER, ROW_HASH_COLUMN, spark_schema
from lakehouse_jobs.tables import DIM_MEMBER, MEMBER_ATTRIBUTES, MEMBER_TABLE, TableSpec

# the columns of a landed batch but its row hash: the contract's, then registration_date_raw (the source text
# of a date with no calendar equivalent, which landed as null; see lakehouse_jobs.contracts.raw_columns)
SOURCE_COLUMNS = [c for c in spark_schema(MEMBER, landed=True).fieldNames() if c != ROW_HASH_COLUMN]

# the standardised member columns, in plaintext, as clean_members produces them; protect() turns the direct
# identifiers among them into ciphertext (tables.MEMBER_ATTRIBUTES)
MEMBER_COLUMNS = ["member_id"] + [f.name.removesuffix("_enc") for f in MEMBER_ATTRIBUTES]


DIRECT_COLUMNS = [f.name.removesuffix("_enc") for f in MEMBER_ATTRIBUTES if f.pii == "direct"]

# Part of attribute_hash (dim_member's versions compare it): the contract's own version, without the rule
# libraries' (a library upgrade that changes no standardised value must not version every member). Change it
# in the contract when a cleaning or validation rule changes. The source's row hash, which the extract
# computes, uses MEMBER.effective_rules_version, which adds the libraries' installed versions.
RULES_VERSION = MEMBER.rules_version


# Up to this many member ids (~40 MB as strings) are shipped to every task (broadcast) rather than shuffled.
BROADCAST_KEYS_MAX = 1_000_000


def _types(spec: TableSpec) -> dict[str, str]:
    return {f.name: f.type for f in spec.fields}


MEMBER_TYPES = _types(MEMBER_TABLE)


DIM_MEMBER_TYPES = _types(DIM_MEMBER)

