"""The Databricks notebook (docs/databricks_jobs_notebook.py) in Databricks' source format, its cells run here
with a recording stand-in for `dbutils` (widgets and secrets, as a workspace provides them) and the wheel's
installed entry points replaced by recorders: it must offer every parameter of the chosen job, take the keys
from the secret scope, and call the entry point a python_wheel_task would, with a command line the job's own
parser accepts."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os

import pytest

from lakehouse_jobs import pii
from lakehouse_jobs.results import JobParams
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

NOTEBOOK = REPO_ROOT / "docs" / "databricks_jobs_notebook.py"
SEPARATOR = "\n# COMMAND ----------\n"


class Widgets:
    def __init__(self, values: dict[str, str]):
        self.created: dict[str, str] = {}
        self.values = values

    def text(self, name, default, label=None):
        self.created[name] = default

    def dropdown(self, name, default, choices, label=None):
        assert default in choices
        self.created[name] = default

    def get(self, name):
        assert name in self.created, f"widget {name} read before it was created"
        return self.values.get(name, self.created[name])


class Secrets:
    def get(self, scope, key):
        assert scope == "lakehouse-test"
        return {"pii_hmac_key": "hmac-from-scope", "pii_encryption_key": "aes-from-scope"}[key]


class DbUtils:
    def __init__(self, values):
        self.widgets, self.secrets = Widgets(values), Secrets()


def run_notebook(values: dict[str, str], monkeypatch) -> tuple[DbUtils, list]:
    calls = []

    class EntryPoint:
        def __init__(self, name):
            self.name = name

        def load(self):
            def main(argv, spark):
                calls.append((self.name, argv, spark, os.environ.get(pii.HMAC_KEY_ENV),
                              os.environ.get(pii.ENCRYPTION_KEY_ENV)))
                return type("Result", (), {"to_dict": lambda _: {"ok": True}})()
            return main

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group, name: [EntryPoint(name)] if group == "console_scripts" else [])
    for name in (pii.HMAC_KEY_ENV, pii.ENCRYPTION_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    dbutils = DbUtils(values)
    namespace = {"dbutils": dbutils, "spark": "the cluster's spark"}
    cells = NOTEBOOK.read_text().split(SEPARATOR)
    for cell in cells[1:]:  # the first cell is %md
        exec(compile(cell, str(NOTEBOOK), "exec"), namespace)
    return dbutils, calls


def test_the_file_is_a_databricks_source_notebook():
    text = NOTEBOOK.read_text()
    assert text.startswith("# Databricks notebook source\n")
    cells = text.split(SEPARATOR)
    assert len(cells) >= 3 and all(line.startswith("# MAGIC") for line in cells[0].splitlines()[1:] if line)


def test_it_offers_every_parameter_and_calls_the_entry_point_with_the_keys_from_the_scope(monkeypatch):
    values = {"job": "member_merge", "secret_scope": "lakehouse-test",
              "member_merge.manifest": "s3://landing/member/extract_date=2026-12-08/_manifest.json",
              "member_merge.tables_root": "s3://lakehouse/delta",
              "member_merge.result_path": "s3://lakehouse/_results/member/x.json",
              # another job's values, left from an earlier run: never passed to this one
              "invoice_load.incoming": "s3://l/invoices/", "invoice_load.result_path": "s3://other.json"}
    dbutils, calls = run_notebook(values, monkeypatch)
    every_parameter = {f"{cls.ENTRY_POINT}.{f.name}" for cls in JobParams.__subclasses__()
                       for f in dataclasses.fields(cls)}
    assert set(dbutils.widgets.created) == {"job", "secret_scope"} | every_parameter
    [(name, argv, spark, hmac_key, aes_key)] = calls
    assert (name, spark) == ("member_merge", "the cluster's spark")
    params = next(c for c in JobParams.__subclasses__() if c.ENTRY_POINT == "member_merge").parse(argv)
    assert (params.manifest, params.tables_root, params.result_path) == (
        values["member_merge.manifest"], values["member_merge.tables_root"], values["member_merge.result_path"])
    assert (hmac_key, aes_key) == ("hmac-from-scope", "aes-from-scope"), "the job sees the scope's keys"
    assert pii.HMAC_KEY_ENV not in os.environ and pii.ENCRYPTION_KEY_ENV not in os.environ, "and nothing after"
    assert not any("from-scope" in a for a in argv), "keys never on the command line"


def test_an_empty_widget_leaves_the_jobs_default(monkeypatch):
    values = {"job": "invoice_load", "secret_scope": "lakehouse-test",
              **{f"invoice_load.{k}": v for k, v in {
                  "member_cards": "s3://l/mc/_manifest.json", "tables_root": "s3://lakehouse/delta",
                  "result_path": "s3://r.json", "incoming": "s3://l/invoices/", "max_files": "  "}.items()}}
    _, [(_, argv, *_)] = run_notebook(values, monkeypatch)
    params = next(c for c in JobParams.__subclasses__() if c.ENTRY_POINT == "invoice_load").parse(argv)
    default = {f.name: f.default for f in dataclasses.fields(type(params))}["max_files"]
    assert params.max_files == default and not any(a.startswith("--max-files") for a in argv)
