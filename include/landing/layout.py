"""Where a landed batch's objects live in the landing bucket: one place, so the extract, the erasure, the
Spark job's parameters and the reconciliation can never disagree about a key.

    <table>/<batch_id>/                 landing_prefix
    <table>/<batch_id>/_manifest.json   manifest_key (MANIFEST_NAME: lakehouse_jobs.manifest)
"""

from __future__ import annotations

from include import settings
from lakehouse_jobs.manifest import MANIFEST_NAME


def landing_prefix(table: str, batch_id: str) -> str:
    return f"{table}/{batch_id}/"


def manifest_key(table: str, batch_id: str) -> str:
    return landing_prefix(table, batch_id) + MANIFEST_NAME


def manifest_uri(table: str, batch_id: str) -> str:
    return f"s3://{settings.LANDING_BUCKET}/{manifest_key(table, batch_id)}"
