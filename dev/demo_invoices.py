"""The invoice half of `make demo`: put a batch of invoice PDFs where senders put them, run `invoice_pipeline`
and print what it loaded and quarantined, and the spec's cross-currency queries answered on the tables.

The batch: the brief's own invoice (tests/data/invoice.pdf), DEMO_INVOICES generated invoices in the same
layout with each label variant in turn (dev/invoice_pdfs.py LAYOUTS: the seed's labels, the generator's
defaults, a VAT invoice, an hourly services one; member numbers drawn from MySQL's member_card, plus one
unknown card), and
three bad files (a truncated PDF, a file that is not a PDF, an invoice whose total does not add up). The
invoices are the same on every demo run, so a second run shows them skipped by the ledger: each file is
loaded once.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path

from dev.airflow_api import AirflowApi, airflow_cli, trigger
from dev.bootstrap import s3_client
from dev.demo_report import task_result
from dev.invoice_ddl_doc import sample_queries
from dev.invoice_pdfs import LAYOUTS, generate_invoice, not_a_pdf, render_invoice_pdf, truncated_pdf, with_wrong_number
from dev.seed_members import connect_root
from include import layout, settings
from include.invoice_landing import INCOMING_PREFIX

DAG_ID = "invoice_pipeline"
DEMO_INVOICES = 40
# the spec's example queries across currencies (docs/invoice-star-schema.md), answered after the load
REPORTING_QUERIES = ("top_members_by_month", "highest_total_day")
SHOWN_ROWS = 6
SEED_INVOICE = Path(__file__).resolve().parents[1] / "tests" / "data" / "invoice.pdf"
UNKNOWN_CARD = "99999999"  # no member holds it: the facts keep it and resolve it once a card appears


def demo_files() -> dict[str, bytes]:
    """File name -> content of the demo batch (module docstring)."""
    conn = connect_root(os.environ.get("MYSQL_DATABASE", "members"))
    try:
        cur = conn.cursor()
        cur.execute("SELECT card_number FROM member_card ORDER BY card_number LIMIT 200")
        cards = [row[0] for row in cur.fetchall()] + [UNKNOWN_CARD]  # text, as member_card holds them
    finally:
        conn.close()
    rng = random.Random(2024)
    # sequence numbers from 101: the generator's HK-00001 would be a re-issue of the brief's invoice
    docs = [generate_invoice(rng, cards, sequence=100 + i) for i in range(1, DEMO_INVOICES + 1)]
    # the label variants of the layout family in turn (invoice_pdfs.LAYOUTS): the parser reads them all
    files = {f"{doc.invoice_number}.pdf": render_invoice_pdf(doc, layout=list(LAYOUTS)[i % len(LAYOUTS)])
             for i, doc in enumerate(docs)}
    files["HK-00001.pdf"] = SEED_INVOICE.read_bytes()
    files["scan-truncated.pdf"] = truncated_pdf(files[f"{docs[0].invoice_number}.pdf"])
    files["remittance-note.pdf"] = not_a_pdf(docs[1])
    files["wrong-total.pdf"] = render_invoice_pdf(with_wrong_number(generate_invoice(rng, cards, sequence=999),
                                                                    "total"))
    return files


def follow_or_trigger(api: AirflowApi) -> str:
    """The run that will load what was just put under the incoming prefix: the active one, if any (unpausing
    the hourly DAG starts the latest hour's run, whose sensor sees the files within a minute), else a new run
    triggered as a user would."""
    api.wait_for_dag(DAG_ID)
    airflow_cli("dags", "unpause", DAG_ID)
    time.sleep(5)  # the scheduler creates the latest hour's run within a few seconds of the unpause
    active = api.get(f"dags/{DAG_ID}/dagRuns?state=queued&state=running").json()["dag_runs"]
    if active:
        print(f"==> following {DAG_ID} run {active[0]['dag_run_id']}", flush=True)
        return active[0]["dag_run_id"]
    run_id = "demo__" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    print(f"==> airflow dags trigger {DAG_ID} --run-id {run_id}", flush=True)
    trigger(DAG_ID, run_id)
    return run_id


def reporting_answers() -> str:
    """The answers of REPORTING_QUERIES on the lakehouse's tables (their first SHOWN_ROWS rows), by a local
    Spark session configured as the runner's (dev/local_spark.py): the SQL is the spec's own, as a user
    would paste it into a Databricks SQL editor."""
    from pyspark.sql import SparkSession

    from dev.local_spark import local_spark_conf
    from lakehouse_jobs.invoice.tables import INVOICE_TABLES

    builder = SparkSession.builder.master("local[2]").appName("demo-invoice-queries")
    for key, value in (local_spark_conf() | {"spark.ui.showConsoleProgress": "false"}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for table in [*INVOICE_TABLES, "dim_member"]:
            spark.read.format("delta").load(f"{layout.delta_root_uri()}/{table}").createOrReplaceTempView(table)
        queries, text = sample_queries(), []
        for name in REPORTING_QUERIES:
            result = spark.sql(queries[name])
            rows = result.take(SHOWN_ROWS + 1)
            text.append(f"  {name} (docs/invoice-star-schema.md):\n    " + "  ".join(result.columns))
            text += ["    " + "  ".join(str(v) for v in row) for row in rows[:SHOWN_ROWS]]
            text += ["    ..."] if len(rows) > SHOWN_ROWS else []
        return "\n".join(text)
    finally:
        spark.stop()


def run(api: AirflowApi, show) -> tuple[bool, str]:
    """Upload the batch and let `invoice_pipeline` load it (follow_or_trigger); (success, the report's text)."""
    files = demo_files()
    s3 = s3_client()
    for name, body in files.items():
        s3.put_object(Bucket=settings.LANDING_BUCKET, Key=INCOMING_PREFIX + name, Body=body)
    print(f"==> {len(files)} files put under s3://{settings.LANDING_BUCKET}/{INCOMING_PREFIX}", flush=True)
    run_id = follow_or_trigger(api)
    state = api.wait_for_run(DAG_ID, run_id, progress=show, timeout=1800)
    if state != "success":
        return False, f"run {run_id} of {DAG_ID} ended {state}: see the UI at {api.base_url} or .local/logs/"
    r = task_result(api, DAG_ID, run_id, "check_load")
    reasons = "\n".join(f"    {reason:<32}{n:>10}" for reason, n in sorted(r["quarantine_reasons"].items()))
    members = ", ".join(f"{k} {v}" for k, v in sorted(r["member_resolution"].items())) or "none"
    return True, f"""
Invoices: run {run_id} (batch {r['batch_id']}), checked by the DAG's check_load task
  files in the batch                  {r['files_seen']:>10}
  already loaded before (ledger)      {r['files_skipped_already_processed']:>10}
  invoices loaded (new or re-issued)  {r['invoices_loaded']:>10}   lines {r['lines_loaded']}
  files quarantined                   {r['quarantined']:>10}
{reasons}
  members on the invoices: {members}
  tables: fact_invoice, fact_invoice_line and their dimensions (docs/invoice-star-schema.md)
{reporting_answers()}"""
