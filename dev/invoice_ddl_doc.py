"""The machine-read parts of docs/invoice-star-schema.md: its CREATE TABLE block, rewritten from the invoice
table declarations (lakehouse_jobs.invoice.tables.INVOICE_TABLES, in that order; TableSpec.create_table_sql
renders each) by

    python -m dev.invoice_ddl_doc

and its example queries (``sample_queries``), which the tests and `make demo` run.

The block is everything between the ``<!-- ddl:begin -->`` and ``<!-- ddl:end -->`` lines: one ```sql fence,
the statements separated by ``;``. tests/spark_jobs/invoice/test_invoice_tables.py fails when the document's
block differs from ``ddl_block()``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lakehouse_jobs.invoice.tables import INVOICE_TABLES

DOC = Path(__file__).resolve().parents[1] / "docs" / "invoice-star-schema.md"
BEGIN, END = "<!-- ddl:begin -->", "<!-- ddl:end -->"
COMMAND = "python -m dev.invoice_ddl_doc"


def ddl_block() -> str:
    """The block, markers included."""
    statements = ";\n\n".join(spec.create_table_sql() for spec in INVOICE_TABLES.values())
    return f"{BEGIN}\n```sql\n{statements};\n```\n{END}"


def current_block(text: str) -> str:
    """The block as the document has it, markers included; ValueError when a marker is missing."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOC.name} has no {BEGIN} ... {END} block")
    return text[start:end + len(END)]


def sample_queries() -> dict[str, str]:
    """The document's ```sql blocks that start with a ``-- name: <name>`` line, by name, in document order."""
    return dict(re.findall(r"```sql\n-- name: (\w+)\n(.*?)```", DOC.read_text(), flags=re.S))


def main() -> int:
    text = DOC.read_text()
    new = text.replace(current_block(text), ddl_block())
    if new == text:
        print(f"{DOC.name}: the CREATE TABLE block is up to date")
    else:
        DOC.write_text(new)
        print(f"{DOC.name}: rewrote the CREATE TABLE block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
