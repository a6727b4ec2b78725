"""The invoice pipeline driven as a user drives it: PDFs put under the incoming prefix, the DAG run to success,
then the facts and the quarantine read back from the Delta tables on MinIO."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from dev import demo_invoices
from dev.airflow_api import AirflowApi
from dev.bootstrap import s3_client
from dev.demo_report import task_result
from dev.invoice_pdfs import generate_invoice, not_a_pdf, render_invoice_pdf
from include import layout, settings
from include.invoice_landing import INCOMING_PREFIX
from tests.services import require_env, require_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api():
    env = require_env("AIRFLOW_API_PORT", "AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD")
    require_port("the Airflow api-server", "127.0.0.1", int(env["AIRFLOW_API_PORT"]))
    return AirflowApi()


def test_new_invoices_are_loaded_and_a_bad_file_quarantined(api, spark):
    # invoice numbers and contents of this test run only: a rerun on the same stack loads new files
    stamp = int(time.time())
    rng = random.Random(stamp)
    docs = [generate_invoice(rng, [11134891], sequence=stamp * 10 + i, max_lines=6) for i in range(3)]
    files = {f"e2e-{doc.invoice_number}.pdf": render_invoice_pdf(doc) for doc in docs}
    files[f"e2e-{stamp}-note.pdf"] = not_a_pdf(docs[0]) + str(stamp).encode()
    s3 = s3_client()
    for name, body in files.items():
        s3.put_object(Bucket=settings.LANDING_BUCKET, Key=INCOMING_PREFIX + name, Body=body)

    run_id = demo_invoices.follow_or_trigger(api)
    state = api.wait_for_run(demo_invoices.DAG_ID, run_id, timeout=1500)
    assert state == "success", f"invoice_pipeline run {run_id} ended {state}"

    result = task_result(api, demo_invoices.DAG_ID, run_id, "check_load")
    assert result["files_seen"] == len(files)
    assert (result["invoices_loaded"], result["quarantined"]) == (3, 1)
    assert result["quarantine_reasons"] == {"not_pdf": 1}

    numbers = [d.invoice_number for d in docs]
    facts = spark.read.format("delta").load(layout.delta_table_uri("fact_invoice")).where(
        F.col("invoice_number").isin(numbers))
    assert {r["invoice_number"]: r["total"] for r in facts.collect()} == {
        d.invoice_number: d.total for d in docs}
    lines = spark.read.format("delta").load(layout.delta_table_uri("fact_invoice_line")).where(
        F.col("invoice_number").isin(numbers))
    assert lines.count() == sum(len(d.lines) for d in docs)
    nets = {r["invoice_number"]: r["net"] for r in lines.groupBy("invoice_number").agg(
        F.sum("net_amount").alias("net")).collect()}
    assert nets == {d.invoice_number: Decimal(d.total) for d in docs}
    quarantine = spark.read.format("delta").load(layout.delta_table_uri("invoice_quarantine"))
    assert quarantine.where(F.col("source_path").endswith(f"e2e-{stamp}-note.pdf")).select("reason").first()[0] == \
        "not_pdf"
