"""Unity Catalog governance of the lakehouse tables, generated from their declarations (lakehouse_jobs.tables).

The jobs create and write the Delta tables by path; production registers them in Unity Catalog under
three-level names (``<catalog>.<schema>.<table>``). This module generates the Databricks SQL that governs
them there, one statement per string, in the order they must run:

1. The functions the masks and the row filter call (``CREATE OR REPLACE FUNCTION``, SQL UDFs):
   ``pii_mask_direct(ciphertext BINARY) RETURNS BINARY``: the value for lakehouse_engineers and
   member_pii_readers, NULL for anyone else; ``pii_mask_quasi_date(d DATE) RETURNS DATE``: the date for
   those two and data_stewards, else the first day of its month; ``pii_quarantine_filter() RETURNS
   BOOLEAN``: true for data_stewards and lakehouse_engineers.
2. ``ALTER TABLE <c>.<s>.<t> ALTER COLUMN <col> SET TAGS ('pii' = 'direct'|'quasi')`` for every field of PII
   class direct or quasi.
3. ``ALTER TABLE <c>.<s>.<t> ALTER COLUMN <col> SET MASK <c>.<s>.pii_mask_direct`` for every direct field (each
   is ``<name>_enc`` AES-256-GCM ciphertext, BINARY), and ``... SET MASK <c>.<s>.pii_mask_quasi_date`` for
   every quasi DATE field.
4. ``ALTER TABLE <c>.<s>.member_quarantine SET ROW FILTER <c>.<s>.pii_quarantine_filter ON ()``.
5. ``CREATE OR REPLACE VIEW <c>.<s>.member_pii`` and ``dim_member_pii``: the table with each ``<name>_enc``
   replaced by ``CAST(try_aes_decrypt(<name>_enc, unbase64(secret('lakehouse', 'pii_encryption_key')), 'GCM')
   AS STRING) AS <name>``. The secret holds the key as base64 text (lakehouse_jobs.pii.PiiKeys reads the
   same value from the cluster's environment), and aes_decrypt wants the 32 key bytes, hence unbase64.
6. ``GRANT``s: ``USE CATALOG`` and ``USE SCHEMA`` to every group, then ``SELECT``/``MODIFY`` per table or view.

Who sees what, and why: docs/pii.md ("Who sees what"). READ on the secret scope, the decrypting view's
second gate, is a workspace ACL that SQL cannot grant (``databricks secrets put-acl``; docs/pii.md).

Syntax, from the Databricks SQL language reference (docs.databricks.com/sql/language-manual/...):
- column masks: ``sql-ref-syntax-ddl-column-mask`` (``MASK func_name [ USING COLUMNS (...) ]``) and
  ``sql-ref-syntax-ddl-alter-table-manage-column`` (``ALTER COLUMN ... SET MASK clause``), with the guide
  data-governance/unity-catalog/filters-and-masks/manually-apply;
- row filters: ``sql-ref-syntax-ddl-row-filter`` (``ROW FILTER func_name ON ( [ column_name [, ...] ] )``; zero
  columns allowed) and ``sql-ref-syntax-ddl-alter-table`` (``SET ROW FILTER clause``);
- tags: ``sql-ref-syntax-ddl-alter-table-manage-column`` (``ALTER COLUMN ... SET TAGS ( tag_name = tag_value
  [, ...] )``, names and values string literals);
- functions: ``sql-ref-syntax-ddl-create-sql-function``, ``functions/is_account_group_member`` (account-level
  groups, direct or indirect membership of the session user), ``functions/secret`` (``secret(scope, key)``,
  constant arguments, STRING, needs READ on the scope), ``functions/try_aes_decrypt`` and
  ``functions/aes_decrypt`` (BINARY key of 16, 24 or 32 bytes; mode 'GCM'), ``functions/unbase64``,
  ``functions/trunc``;
- ``security-grant`` (``GRANT privilege_types ON securable_object TO principal``; principals in backticks).

Pure Python: no pyspark, so the Airflow side, a test or an engineer's laptop runs it as well as a cluster:

    python -m lakehouse_jobs.unity_catalog --catalog main --schema lakehouse   # or: unity_catalog_ddl ...
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from lakehouse_jobs.invoice.tables import INVOICE_TABLES
from lakehouse_jobs.tables import TABLES, Field, TableSpec, encrypted_name

# the groups (account-level, as is_account_group_member tests them); docs/pii.md says who is in each
ENGINEERS = "lakehouse_engineers"  # the jobs' service principal (and the on-call engineers): read and write
ANALYSTS = "member_analysts"  # analytics: ciphertext masked to NULL, hashes and generalised quasi-identifiers
PII_READERS = "member_pii_readers"  # may read the decrypting views (with READ on the secret scope too)
STEWARDS = "data_stewards"  # investigate quarantined rows
GROUPS = (ENGINEERS, ANALYSTS, PII_READERS, STEWARDS)

# the Databricks secret scope and key of the AES key (include/databricks_runs.py PII_SECRETS gives the same
# key to the jobs' clusters; tests/spark_jobs/test_unity_catalog.py checks that the two agree)
SECRET_SCOPE = "lakehouse"
ENCRYPTION_KEY_SECRET = "pii_encryption_key"

TAG = "pii"  # the column tag: its value is the field's PII class

MASK_DIRECT = "pii_mask_direct"
MASK_QUASI_DATE = "pii_mask_quasi_date"
QUARANTINE_FILTER = "pii_quarantine_filter"

# who sees a value as stored; everyone else gets NULL (direct) or a generalisation (quasi)
DIRECT_READERS = (ENGINEERS, PII_READERS)
QUASI_READERS = (ENGINEERS, PII_READERS, STEWARDS)
QUARANTINE_READERS = (STEWARDS, ENGINEERS)

# the tables with a decrypting view, and its name
PII_VIEWS = {"member": "member_pii", "dim_member": "dim_member_pii"}

# table -> (group, privileges); a view's SELECT is its readers' only access to the rows behind it
# every table whose columns get tags and masks: the member tables and the invoice star schema
GOVERNED_TABLES: dict[str, TableSpec] = TABLES | INVOICE_TABLES

TABLE_GRANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "member": ((ENGINEERS, "SELECT, MODIFY"), (ANALYSTS, "SELECT")),
    "dim_member": ((ENGINEERS, "SELECT, MODIFY"), (ANALYSTS, "SELECT")),
    "member_quarantine": ((ENGINEERS, "SELECT, MODIFY"), (STEWARDS, "SELECT")),
    "member_batches": ((ENGINEERS, "SELECT, MODIFY"), (ANALYSTS, "SELECT"), (STEWARDS, "SELECT")),
    # the erasure audit trail (keyed hashes and counts): the jobs write it, data stewards answer for it
    "erasure_requests": ((ENGINEERS, "SELECT, MODIFY"), (STEWARDS, "SELECT")),
    # the invoice star schema (lakehouse_jobs.invoice.tables): facts and dimensions for analysts (bill-to and
    # ship-to names and addresses are ciphertext, masked); the quarantine and the ledger for stewards
    **{name: ((ENGINEERS, "SELECT, MODIFY"), (ANALYSTS, "SELECT")) for name in (
        "fact_invoice", "fact_invoice_line", "dim_date", "dim_product", "dim_payment_method", "dim_invoice_terms",
        "dim_seller", "dim_party_address", "dim_currency")},
    "invoice_quarantine": ((ENGINEERS, "SELECT, MODIFY"), (STEWARDS, "SELECT")),
    "invoice_ledger": ((ENGINEERS, "SELECT, MODIFY"), (STEWARDS, "SELECT")),
    "member_pii": ((PII_READERS, "SELECT"),),
    "dim_member_pii": ((PII_READERS, "SELECT"),),
}

_ENC = encrypted_name("")  # the suffix of a direct identifier's ciphertext column: first_name -> first_name_enc

# A plain (unquoted) SQL identifier: a letter or underscore, then letters, digits and underscores; Unity
# Catalog names are at most 255 characters. Anything else (dots, backticks, quotes, spaces, hyphens,
# semicolons) is refused rather than quoted: these names are pasted into every statement.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Databricks' rule for secret scope names (Secrets API create-scope); no quote can reach the SQL literal
_SCOPE_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,128}")


def _check_identifier(kind: str, name: object) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{kind} {name!r} is not a plain identifier: a letter or '_', then letters, digits "
                         "or '_', at most 255 characters")
    return name


def _member_of(groups: Sequence[str]) -> str:
    return " OR ".join(f"is_account_group_member('{g}')" for g in groups)


def _functions(ns: str) -> list[str]:
    return [
        f"CREATE OR REPLACE FUNCTION {ns}.{MASK_DIRECT}(ciphertext BINARY) RETURNS BINARY "
        "COMMENT 'Column mask of direct identifiers (AES-256-GCM ciphertext): NULL unless the reader may "
        "decrypt (docs/pii.md)' "
        f"RETURN CASE WHEN {_member_of(DIRECT_READERS)} THEN ciphertext ELSE NULL END",
        f"CREATE OR REPLACE FUNCTION {ns}.{MASK_QUASI_DATE}(d DATE) RETURNS DATE "
        "COMMENT 'Column mask of quasi-identifying dates: the first day of the month unless the reader may "
        "see the day (docs/pii.md)' "
        f"RETURN CASE WHEN {_member_of(QUASI_READERS)} THEN d ELSE trunc(d, 'MM') END",
        f"CREATE OR REPLACE FUNCTION {ns}.{QUARANTINE_FILTER}() RETURNS BOOLEAN "
        "COMMENT 'Row filter of member_quarantine: its rows are for data stewards and the jobs only "
        "(docs/pii.md)' "
        f"RETURN {_member_of(QUARANTINE_READERS)}",
    ]


def _mask_of(table: TableSpec, f: Field) -> str | None:
    """The mask function of a field, or None for a field shown as stored. Fails for a direct identifier
    of a type no mask takes: such a column would otherwise stay readable."""
    if f.pii == "direct":
        if f.type != "BINARY" or not f.name.endswith(_ENC):
            raise ValueError(f"{table.name}.{f.name}: a direct identifier must be `<name>_enc` BINARY ciphertext")
        return MASK_DIRECT
    if f.pii == "quasi" and f.type == "DATE":
        return MASK_QUASI_DATE
    return None


def _decrypting_view(ns: str, table: TableSpec, view: str, secret_scope: str) -> str:
    key = f"unbase64(secret('{secret_scope}', '{ENCRYPTION_KEY_SECRET}'))"
    columns = [
        f"CAST(try_aes_decrypt({f.name}, {key}, 'GCM') AS STRING) AS {f.name.removesuffix(_ENC)}"
        if f.pii == "direct" else f.name
        for f in table.fields
    ]
    body = ",\n  ".join(columns)
    return (f"CREATE OR REPLACE VIEW {ns}.{view}\n"
            f"COMMENT '{table.name} with its direct identifiers decrypted, for {PII_READERS} (docs/pii.md)'\n"
            f"AS SELECT\n  {body}\nFROM {ns}.{table.name}")


def governance_ddl(catalog: str, schema: str, *, secret_scope: str = SECRET_SCOPE) -> list[str]:
    """The Databricks SQL statements that govern the lakehouse tables in ``<catalog>.<schema>``, in order.

    Shapes (``ns`` = ``<catalog>.<schema>``; every table, view and function name is three-level):
    ``CREATE OR REPLACE FUNCTION ns.<f>(...) RETURNS <type> COMMENT '...' RETURN <expr>``;
    ``ALTER TABLE ns.<t> ALTER COLUMN <col> SET TAGS ('pii' = 'direct'|'quasi')``;
    ``ALTER TABLE ns.<t> ALTER COLUMN <col> SET MASK ns.<f>``;
    ``ALTER TABLE ns.<t> SET ROW FILTER ns.<f> ON ()``;
    ``CREATE OR REPLACE VIEW ns.<v> COMMENT '...' AS SELECT ... FROM ns.<t>`` (several lines);
    ``GRANT <privileges> ON { CATALOG <catalog> | SCHEMA ns | TABLE ns.<t> } TO `<group>```.
    No statement contains a semicolon. The module docstring lists the documentation pages of each form.

    `secret_scope`: the scope holding ``pii_encryption_key``, as DATABRICKS_SECRET_SCOPE names it for the jobs
    (default ``lakehouse``).

    Raises ValueError when `catalog` or `schema` is not a plain identifier, or `secret_scope` not a scope name.
    """
    catalog = _check_identifier("catalog", catalog)
    schema = _check_identifier("schema", schema)
    if not isinstance(secret_scope, str) or not _SCOPE_NAME.fullmatch(secret_scope):
        raise ValueError(f"secret scope {secret_scope!r}: up to 128 letters, digits, '-', '_', '.' and '@'")
    ns = f"{catalog}.{schema}"
    tables = list(GOVERNED_TABLES.values())

    statements = _functions(ns)
    statements += [
        f"ALTER TABLE {ns}.{t.name} ALTER COLUMN {f.name} SET TAGS ('{TAG}' = '{f.pii}')"
        for t in tables for f in t.fields if f.pii in ("direct", "quasi")
    ]
    statements += [
        f"ALTER TABLE {ns}.{t.name} ALTER COLUMN {f.name} SET MASK {ns}.{mask}"
        for t in tables for f in t.fields if (mask := _mask_of(t, f))
    ]
    statements.append(f"ALTER TABLE {ns}.member_quarantine SET ROW FILTER {ns}.{QUARANTINE_FILTER} ON ()")
    statements += [_decrypting_view(ns, TABLES[name], view, secret_scope) for name, view in PII_VIEWS.items()]

    statements += [f"GRANT USE CATALOG ON CATALOG {catalog} TO `{g}`" for g in GROUPS]
    statements += [f"GRANT USE SCHEMA ON SCHEMA {ns} TO `{g}`" for g in GROUPS]
    statements += [
        f"GRANT {privileges} ON TABLE {ns}.{name} TO `{group}`"
        for name, grants in TABLE_GRANTS.items() for group, privileges in grants
    ]
    return statements


def main(argv: Sequence[str] | None = None) -> int:
    """Print governance_ddl(--catalog, --schema[, --secret-scope]), each statement followed by ``;`` and a
    newline (statements separated by ``;\\n``); exit 2 on a name that is not a plain identifier."""
    parser = argparse.ArgumentParser(
        prog="unity_catalog_ddl",
        description="Print the Unity Catalog governance DDL (tags, masks, row filter, decrypting views, "
                    "grants) of the lakehouse tables. See docs/pii.md.")
    parser.add_argument("--catalog", required=True, help="Unity Catalog catalog, e.g. main")
    parser.add_argument("--schema", required=True, help="schema in that catalog, e.g. lakehouse")
    parser.add_argument("--secret-scope", default=SECRET_SCOPE,
                        help=f"secret scope of {ENCRYPTION_KEY_SECRET} (DATABRICKS_SECRET_SCOPE; default %(default)s)")
    args = parser.parse_args(argv)
    try:
        statements = governance_ddl(args.catalog, args.schema, secret_scope=args.secret_scope)
    except ValueError as e:
        parser.error(str(e))  # exits 2
    sys.stdout.write(";\n".join(statements) + ";\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
