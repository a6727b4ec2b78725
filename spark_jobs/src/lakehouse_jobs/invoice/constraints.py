"""The invoice star schema's keys (lakehouse_jobs.invoice.tables declares the tables): primary keys, natural
keys beside surrogate ones, and the facts' foreign keys.

Delta enforces none of these; the job keeps them (MERGE on the primary and natural keys, dimension rows
inserted before the facts that reference them) and tests/spark_jobs/invoice/test_invoice_job.py checks them on
loaded data. informational_constraints_ddl() declares them to Unity Catalog.
"""

from __future__ import annotations

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "fact_invoice_line": ("invoice_number", "line_number"),
    "fact_invoice": ("invoice_number",),
    "dim_date": ("date_key",),
    "dim_product": ("product_key",),
    "dim_payment_method": ("payment_method_key",),
    "dim_invoice_terms": ("invoice_terms_key",),
    "dim_seller": ("seller_key",),
    "dim_party_address": ("party_key",),
    "dim_currency": ("currency_code",),
    "invoice_quarantine": ("source_sha256",),
    "invoice_ledger": ("source_sha256",),
}

# unique natural keys beside a surrogate primary key
UNIQUE_KEYS: dict[str, tuple[str, ...]] = {
    "dim_date": ("full_date",),
    "dim_product": ("product_nk",),
    "dim_payment_method": ("payment_method_nk",),
    "dim_invoice_terms": ("terms_hash",),
    "dim_seller": ("seller_hash",),
    "dim_party_address": ("party_hash",),
}


_FACT_FOREIGN_KEYS = {
    "invoice_date_key": ("dim_date", "date_key"),
    "due_date_key": ("dim_date", "date_key"),
    "member_sk": ("dim_member", "member_sk"),
    "payment_method_key": ("dim_payment_method", "payment_method_key"),
    "invoice_terms_key": ("dim_invoice_terms", "invoice_terms_key"),
    "seller_key": ("dim_seller", "seller_key"),
    "bill_to_key": ("dim_party_address", "party_key"),
    "ship_to_key": ("dim_party_address", "party_key"),
    "currency_code": ("dim_currency", "currency_code"),
    "reporting_currency_code": ("dim_currency", "currency_code"),
}
# table -> {column: (referenced table, referenced column)}
FOREIGN_KEYS: dict[str, dict[str, tuple[str, str]]] = {
    "fact_invoice_line": {**_FACT_FOREIGN_KEYS, "product_key": ("dim_product", "product_key")},
    "fact_invoice": dict(_FACT_FOREIGN_KEYS),
}


def informational_constraints_ddl(ns: str) -> list[str]:
    """Unity Catalog's informational PRIMARY KEY and FOREIGN KEY constraints of the invoice tables in `ns`
    (``<catalog>.<schema>``; dim_member must be there too): ``ALTER TABLE ns.t ADD CONSTRAINT t_pk PRIMARY
    KEY (c, ...)`` then ``ALTER TABLE ns.t ADD CONSTRAINT t_<column>_fk FOREIGN KEY (column) REFERENCES
    ns.d (k)``. Databricks records them (Catalog Explorer, BI tools read them) but enforces none."""
    statements = [f"ALTER TABLE {ns}.{table} ADD CONSTRAINT {table}_pk PRIMARY KEY ({', '.join(columns)})"
                  for table, columns in PRIMARY_KEYS.items()]
    statements += [
        f"ALTER TABLE {ns}.{table} ADD CONSTRAINT {table}_{column}_fk FOREIGN KEY ({column}) "
        f"REFERENCES {ns}.{ref_table} ({ref_column})"
        for table, keys in FOREIGN_KEYS.items() for column, (ref_table, ref_column) in keys.items()
    ]
    return statements

