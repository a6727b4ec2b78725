"""The member history benchmark runs end to end on 200 members, once, in the test session's Spark: it
checks the harness (results written, the job's tables counted right), never how fast anything is."""

from __future__ import annotations

import json

import pytest

from benchmarks import member_history_bench

pytestmark = pytest.mark.integration

MEMBERS = 200


def test_harness_runs_every_contender_checks_the_tables_and_writes_results(spark, tmp_path):
    out = tmp_path / "results"

    assert member_history_bench.main(["--members", str(MEMBERS), "--repeats", "1", "--out", str(out),
                                      "--workdir", str(tmp_path / "work")], spark=spark) == 0

    [json_file] = out.glob("member-history-*.json")
    report = json.loads(json_file.read_text())
    assert json_file.with_suffix(".md").read_text().startswith("# Member history benchmark")
    assert report["members"] == MEMBERS and report["changed"] == MEMBERS // 20 and report["repeats"] == 1
    assert report["data"]["a"]["rows"] == report["data"]["b"]["rows"] == MEMBERS
    assert [r["contender"] for r in report["runs"][:2]] == ["warmup", "first_load"]
    assert sorted(r["contender"] for r in report["runs"][2:]) == ["job_change", "job_replay", "overwrite"]
    for run in report["runs"]:
        assert run["wall_s"] > 0 and run["rss_samples"] >= 2
        # the sampler saw the JVM, not only this Python process
        assert run["peak_rss_tree_mib"] > 300
    # the tables were counted after every job run, and held what the batches say
    assert report["checks_passed"] and report["checks"] >= 8 * 3 + 4
    change = next(r for r in report["runs"] if r["contender"] == "job_change")
    replay = next(r for r in report["runs"] if r["contender"] == "job_replay")
    found = {c["check"]: c["found"] for c in change["checks"]}
    assert found.items() >= {"member rows": MEMBERS, "dim_member rows": MEMBERS + MEMBERS // 20,
                             "dim_member current rows": MEMBERS}.items()
    # the job's step lines were captured, the SCD2 step among them
    assert {"plan_changes", "merge_dim_member", "merge_members"} <= set(change["steps"])
    assert change["commits"]["dim_member"]["numTargetRowsInserted"] == MEMBERS // 20
    assert replay["commits"]["member"]["commits"] == replay["commits"]["dim_member"]["commits"] == 0
    targets = {t["target"].split(" vs ")[0] for t in report["targets"]}
    assert targets == {"job, 5% change", "job, unchanged replay", "SCD2 step (merge_dim_member) of the 5% change"}
    assert set(report["summary"]) == {"overwrite", "job_change", "job_replay"}
    assert report["versions"]["delta-spark"] and report["spark"]["master"].startswith("local")
