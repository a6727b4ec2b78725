"""The Delta tables as Airflow Assets, and the pool that serialises their writers.

The member pipeline's `reconcile` task emits the table Assets once a batch is verified, so downstream DAGs
(maintenance, invoices) are scheduled on the data rather than on a clock. Every task that writes the member
tables (the member MERGE, the erasure, the maintenance run) takes the one slot of MEMBER_TABLES_POOL, which
counts deferred tasks too (a Databricks run is waited for by the triggerer), so no two of them run at once;
a commit conflict that still happens (a run started by hand outside Airflow) is retried by the jobs.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include import layout

MEMBER = Asset(name="delta_member", uri=layout.delta_table_uri("member"))
DIM_MEMBER = Asset(name="delta_dim_member", uri=layout.delta_table_uri("dim_member"))
MEMBER_QUARANTINE = Asset(name="delta_member_quarantine", uri=layout.delta_table_uri("member_quarantine"))
MEMBER_TABLES = [MEMBER, DIM_MEMBER, MEMBER_QUARANTINE]

# created by dev/stack.sh and docker-compose's airflow-init: `airflow pools set <name> 1 ... --include-deferred`
MEMBER_TABLES_POOL = "lakehouse_member_tables"

# the invoice star schema (lakehouse_jobs.invoice.tables), updated by invoice_pipeline's check_load
FACT_INVOICE_LINE = Asset(name="delta_fact_invoice_line", uri=layout.delta_table_uri("fact_invoice_line"))
FACT_INVOICE = Asset(name="delta_fact_invoice", uri=layout.delta_table_uri("fact_invoice"))
INVOICE_QUARANTINE = Asset(name="delta_invoice_quarantine", uri=layout.delta_table_uri("invoice_quarantine"))
INVOICE_TABLES = [FACT_INVOICE_LINE, FACT_INVOICE, INVOICE_QUARANTINE]
