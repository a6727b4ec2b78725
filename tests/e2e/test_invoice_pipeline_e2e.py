"""The invoice pipeline driven as a user drives it: PDFs put under the incoming prefix, the DAG run to success,
then the facts, the ledger and the quarantine read back from the Delta tables on MinIO.

It runs on the stack's test profile (tests/e2e/conftest.py): its landing bucket holds only what the suite puts
there, and its Airflow runs only the runs a test triggers, so the run this test triggers claims every file."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from dev.bootstrap import s3_client
from dev.invoice_pdfs import generate_invoice, not_a_pdf, render_invoice_pdf
from include import layout, settings
from include.invoice_landing import BATCHES_PREFIX, INCOMING_PREFIX, OPEN_PREFIX
from lakehouse_jobs.manifest import FILE_LIST_NAME, FileList
from tests.e2e.conftest import run_to_success

pytestmark = pytest.mark.e2e

DAG_ID = "invoice_pipeline"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # of zero bytes


def claimed_paths(s3, source_keys: set[str]) -> dict[str, str]:
    """source key -> claimed s3:// path, from every batch's file list (include/invoice_landing.py)."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.LANDING_BUCKET, Prefix=BATCHES_PREFIX):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/" + FILE_LIST_NAME):
                body = s3.get_object(Bucket=settings.LANDING_BUCKET, Key=obj["Key"])["Body"].read()
                found |= {f.source_key: f.path for f in FileList.from_json(body).files if f.source_key in source_keys}
    return found


def test_new_invoices_are_loaded_and_bad_files_quarantined(api, spark):
    # invoice numbers and contents of this test run only: a rerun on the same stack loads new files
    stamp = int(time.time())
    rng = random.Random(stamp)
    docs = [generate_invoice(rng, [11134891], sequence=stamp * 10 + i) for i in range(3)]
    files = {f"e2e-{doc.invoice_number}.pdf": render_invoice_pdf(doc) for doc in docs}
    # a name Spark's readers hide, and one S3 metadata cannot hold as it is: the claim renames it, the invoice loads
    files[f"_e2e Zoë {stamp} [draft].pdf"] = files.pop(f"e2e-{docs[2].invoice_number}.pdf")
    files[f"e2e-{stamp}-note.pdf"] = not_a_pdf(docs[0]) + str(stamp).encode()
    files[f"e2e-{stamp}-empty.pdf"] = b""  # a failed upload: Spark never returns a zero-byte file
    s3 = s3_client()
    for name, body in files.items():
        s3.put_object(Bucket=settings.LANDING_BUCKET, Key=INCOMING_PREFIX + name, Body=body)
    sources = {INCOMING_PREFIX + name for name in files}

    run_to_success(api, DAG_ID, f"e2e__{stamp}", timeout=1500)
    paths = claimed_paths(s3, sources)
    assert set(paths) == sources, f"claimed {sorted(paths)}, expected {sorted(sources)}"
    assert not s3.list_objects_v2(Bucket=settings.LANDING_BUCKET, Prefix=INCOMING_PREFIX).get("KeyCount")
    # the run checked its batch to the end: no batch is left open for the next claim to list again
    assert not s3.list_objects_v2(Bucket=settings.LANDING_BUCKET, Prefix=OPEN_PREFIX).get("KeyCount")

    ledger = spark.read.format("delta").load(layout.delta_table_uri("invoice_ledger"))
    status = {r["source_path"]: r["status"] for r in ledger.where(F.col("source_path").isin(list(paths.values())))
              .collect()}
    # an empty file has the content of every empty file: the ledger records the first one ever received,
    # and the DAG's check_load (the run succeeded) accounts for a later one as already processed
    empty = paths.pop(INCOMING_PREFIX + f"e2e-{stamp}-empty.pdf")
    assert status.pop(empty, "quarantined") == "quarantined"
    assert status == {paths[INCOMING_PREFIX + name]: "quarantined" if name.endswith("note.pdf") else "loaded"
                      for name in files if not name.endswith("empty.pdf")}
    quarantine = spark.read.format("delta").load(layout.delta_table_uri("invoice_quarantine"))
    reasons = {r["source_path"]: r["reason"] for r in quarantine.collect()}
    assert reasons[paths[INCOMING_PREFIX + f"e2e-{stamp}-note.pdf"]] == "not_pdf"
    assert ledger.where(F.col("source_sha256") == EMPTY_SHA256).select("status").first()[0] == "quarantined"

    numbers = [d.invoice_number for d in docs]
    facts = spark.read.format("delta").load(layout.delta_table_uri("fact_invoice")).where(
        F.col("invoice_number").isin(numbers))
    assert {r["invoice_number"]: r["total"] for r in facts.collect()} == {d.invoice_number: d.total for d in docs}
    lines = spark.read.format("delta").load(layout.delta_table_uri("fact_invoice_line")).where(
        F.col("invoice_number").isin(numbers))
    assert lines.count() == sum(len(d.lines) for d in docs)
    nets = {r["invoice_number"]: r["net"] for r in lines.groupBy("invoice_number").agg(
        F.sum("net_amount").alias("net")).collect()}
    assert nets == {d.invoice_number: Decimal(d.total) for d in docs}
