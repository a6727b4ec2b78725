"""The member daily benchmark's harness runs end to end on a tiny table with two contenders that need no
Databricks run (dlt and the same-work notebook, every load: first, unchanged replay, 5% change):
it checks that the harness seeds and switches the source, measures, checks the tables and writes results,
never how fast anything is.

The DAG and job-alone contenders are left out: a single Databricks run of the job costs one to two minutes
on a busy two-core machine whatever the size, six of them would not fit a smoke test; `--quick` runs them.
The plain notebook is left out too (three more spark-submits): it is the same-work notebook's read and MERGE
without the rules, and the harness treats both alike.
Needs the stack (MariaDB, MinIO); the dlt venv (.local/bench-venv) and the JDBC driver are installed by the
harness itself when missing."""

from __future__ import annotations

import json

import pytest

from benchmarks.member_daily import cli

pytestmark = pytest.mark.integration

MEMBERS = 200


def test_harness_measures_checks_and_writes_results(mysql_env, s3_env, tmp_path):
    out = tmp_path / "results"

    assert cli.main(["--quick", "--members", str(MEMBERS), "--contenders", "dlt", "same_work",
                                    "--bucket-prefix", "bench-daily-smoke",
                                    "--database-prefix", "bench_daily_smoke", "--out", str(out)]) == 0

    [json_file] = out.glob("member-daily-*.json")
    report = json.loads(json_file.read_text())
    markdown = json_file.with_suffix(".md").read_text()
    assert markdown.startswith("# Member daily benchmark")
    assert report["checks_passed"] and report["repeats"] == 1
    [size] = report["sizes"]
    assert size["rows"] == MEMBERS and size["changed"] == MEMBERS // 20
    assert size["mysql_A"]["value_sum"] != size["mysql_B"]["value_sum"], "state B differs from A"
    assert [(r["contender"], r["step"]) for r in report["runs"]] == [
        (c, s) for c in ("dlt", "same_work") for s in ("first", "replay", "change")]
    for run in report["runs"]:
        assert run["ok"] and run["rows"] == MEMBERS and run["wall_s"] > 0 and run["rss_samples"] >= 2
        assert run["cpu_total_s"] > 0 and run["limit"]
        assert all(c["ok"] for c in run["checks"])
        if run["contender"] == "same_work":
            # as ours: member + quarantine = the source's ids, dim_member's current rows, its versions
            names = {c["check"] for c in run["checks"]}
            assert "dim_member: current member_id set = member's" in names
            assert {"first": "member + quarantined rows = source rows", "replay": "replay adds no dim_member version",
                    "change": "dim_member rows: first load + changed members"}[run["step"]] in names
            assert run["contender_facts"]["valid_rows"] == MEMBERS and run["commits"]["dim_member"]["commits"] >= 1
            continue
        # every load checked against MySQL: rows, member_id set and values, plus the changed rows after B
        assert len(run["checks"]) == (5 if run["step"] == "change" else 4)
        assert run["commits"]["member"]["commits"] >= 1
    # the sampler saw the real processes: a Python with pyarrow for dlt, a JVM for the same-work notebook
    assert min(r["peak_rss_mib"] for r in report["runs"] if r["contender"] == "dlt") > 50
    assert min(r["peak_rss_mib"] for r in report["runs"] if r["contender"] == "same_work") > 300
    assert report["versions"]["bench_venv"]["dlt"].startswith("1.")
    assert report["settings"]["driver_memory"]
    assert set(report["summary"][str(MEMBERS)]) == {"dlt", "same_work"}

    # --render rewrites the same Markdown from the JSON
    json_file.with_suffix(".md").unlink()
    assert cli.main(["--render", str(json_file)]) == 0
    assert json_file.with_suffix(".md").read_text() == markdown
