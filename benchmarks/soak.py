"""Soak: consecutive daily runs of `member_pipeline` through Airflow on a seeded source,
with random inserts, updates, deletes and dirty rows between them, and the invariants I1-I4 of
docs/reliability.md checked after every run.

    LAKEHOUSE_PROFILE=test dev/stack.sh start
    LAKEHOUSE_PROFILE=test dev/stack.sh run python -m benchmarks.soak --out benchmarks/results

It runs on the stack's test profile (its own database, buckets and Airflow; the next `make test` starts
from scratch anyway) and begins by emptying them. The source changes are drawn by `plan_day` from a seeded
generator; this process keeps the state every member must then have (`Expected`) and compares it with the
tables (`violations`): a member missing, left behind after a delete, holding a stale value, held twice, or
a dirty row not quarantined is counted as lost. Every `--maintenance-every` days `lakehouse_maintenance`
runs (OPTIMIZE, VACUUM) between two days, and every `--replay-every` days the same day is run twice, the
second run expected to change nothing (I4). Writes soak-<date>.json and .md under --out, refusing to
replace a result already there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Member:
    """What the source holds for one member, as far as the soak checks it."""

    first_name: str
    email: str
    dirty: bool = False
    # a dirty row the soak can fix by giving it a valid email (its own dirty rows, and the seeded bad email);
    # the seeded bad dates stay dirty
    fixable: bool = True


@dataclass
class Day:
    """One day's source changes: ids by kind, and the new values of the updated ones."""

    inserts: dict[str, Member] = field(default_factory=dict)
    updates: dict[str, Member] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes)


class Expected:
    """The state the tables must show: for each member at the source, the values of its last valid row
    (the member table keeps the last row that passed validation, lakehouse_jobs.tables.MEMBER_TABLE) and
    whether its current row is dirty (then its id must be in member_quarantine)."""

    def __init__(self, source: dict[str, Member]):
        self.source = dict(source)
        self.valid = {k: m for k, m in source.items() if not m.dirty}

    def apply(self, day: Day) -> None:
        for member_id, member in {**day.inserts, **day.updates}.items():
            self.source[member_id] = member
            if not member.dirty:
                self.valid[member_id] = member
        for member_id in day.deletes:
            self.source.pop(member_id)
            self.valid.pop(member_id, None)

    @property
    def dirty_ids(self) -> set[str]:
        return {k for k, m in self.source.items() if m.dirty}


def plan_day(rng: random.Random, source: dict[str, Member], day: int, change: float) -> Day:
    """About `change` × members changed: 40% updates, 30% inserts, 20% deletes, 10% rows made dirty (new
    members and updates); a tenth of the fixable dirty members at the source (at least one) are fixed. Names
    and emails are new and distinct (`s<day>x<i>`), so a stale value can never equal the expected one by
    chance."""
    n = max(1, round(len(source) * change))
    ids = [k for k in sorted(source) if source[k].fixable]  # an update would leave an unfixable row dirty
    picked = rng.sample(ids, min(len(ids), round(n * 0.4) + round(n * 0.2) + round(n * 0.05)))
    updates, deletes = picked[:round(n * 0.4)], picked[round(n * 0.4):round(n * 0.4) + round(n * 0.2)]
    dirty_updates = picked[round(n * 0.4) + round(n * 0.2):]
    plan = Day(deletes=deletes)
    for i, member_id in enumerate(updates):
        plan.updates[member_id] = Member(f"Upd{day}x{i}", f"upd.{day}.{i}@example.com")
    for i, member_id in enumerate(dirty_updates):
        plan.updates[member_id] = Member(f"Bad{day}x{i}", f"bad.{day}.{i}@@example.com", dirty=True)
    fixes = [k for k in sorted(source) if source[k].dirty and source[k].fixable and k not in plan.deletes]
    for i, member_id in enumerate(rng.sample(fixes, max(len(fixes) // 10, min(1, len(fixes))))):
        plan.updates[member_id] = Member(f"Fix{day}x{i}", f"fix.{day}.{i}@example.com")
    for i in range(round(n * 0.3) + round(n * 0.05)):
        dirty = i >= round(n * 0.3)
        member_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plan.inserts[member_id] = Member(f"New{day}x{i}", f"{'bad' if dirty else 'new'}.{day}.{i}@"
                                         f"{'@' if dirty else ''}example.com", dirty=dirty)
    return plan


def violations(expected: Expected, member: dict[str, str], duplicate_keys: int,
               dim_current: set[str], quarantined: set[str]) -> dict[str, int]:
    """How the tables differ from `expected`, by kind (all 0 when the run kept every invariant).

    member: the member table, member_id -> decrypted first_name (every update the soak makes gives a new,
    distinct first name, so a lost update shows there; emails are normalised by the job); duplicate_keys:
    rows beyond one per member_id (I2); dim_current: member ids with a current dim_member version;
    quarantined: member ids in member_quarantine. `missing`: a member that passed validation and is not in
    the table (lost); `not_deleted`: a member deleted at the source still in the table; `stale`: a value
    other than the last valid one (an update lost); `dirty_not_quarantined`: a dirty row with no quarantine
    verdict.
    """
    want = expected.valid
    return {
        "missing": len(want.keys() - member.keys()),
        "not_deleted": len(member.keys() - want.keys()),
        "stale": sum(1 for k, v in member.items() if k in want and v != want[k].first_name),
        "duplicate_keys": duplicate_keys,
        "dim_member_current_differs": len(dim_current ^ member.keys()),
        "dirty_not_quarantined": len(expected.dirty_ids - quarantined),
    }


# ------------------------------------------------------------------------------------------ the stack


def _source_rows(conn) -> dict[str, Member]:
    cur = conn.cursor()
    cur.execute("SELECT member_id, first_name, email FROM member")
    dirty = _dirty_seed()
    return {r[0]: Member(r[1], r[2], dirty=r[0] in dirty, fixable=dirty.get(r[0], True)) for r in cur.fetchall()}


def _dirty_seed() -> dict[str, bool]:
    """The seeded members the job quarantines (dev/seed_members.DIRTY_MEMBERS; the others are valid in unusual
    ways), each with whether a valid email fixes it."""
    from dev.seed_members import DIRTY_MEMBERS

    reasons = {"zero-date": False, "no-valid-day": False, "future": False, "bad-email": True}
    return {m["member_id"]: reasons[m["last_name"]] for m in DIRTY_MEMBERS if m["last_name"] in reasons}


def _apply_to_source(conn, plan: Day) -> None:
    from dev.seed_members import COLUMNS

    cur = conn.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    for member_id, m in plan.updates.items():
        cur.execute("UPDATE member SET first_name = %s, email = %s WHERE member_id = %s",
                    (m.first_name, m.email, member_id))
    if plan.inserts:
        rows = [{"member_id": k, "first_name": m.first_name, "last_name": "Soak", "email": m.email,
                 "phone_number": "(213) 948-8645", "address": "1 Main St", "city": "Springfield",
                 "country": "United States of America",
                 "registration_date": "2024-05-01"} for k, m in plan.inserts.items()]
        cur.executemany(f"INSERT INTO member ({', '.join(COLUMNS)}) VALUES ({', '.join(f'%({c})s' for c in COLUMNS)})",
                        rows)
    if plan.deletes:
        cur.executemany("DELETE FROM member WHERE member_id = %s", [(k,) for k in plan.deletes])
    conn.commit()


def _tables(spark) -> tuple[dict[str, str], int, set[str], set[str], int]:
    """The member table (member_id -> decrypted first_name), its rows beyond one per id, the ids with a
    current dim_member version, the ids in member_quarantine, and the member table's latest version."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from include import layout
    from lakehouse_jobs import pii

    path = layout.delta_table_uri("member")
    df = pii.with_keys(spark, spark.read.format("delta").load(path), pii.PiiKeys.from_env())
    rows = pii.drop_keys(df.withColumn("first_name", pii.decrypt("first_name_enc"))) \
        .select("member_id", "first_name").collect()
    member = {r["member_id"]: r["first_name"] for r in rows}
    dim = spark.read.format("delta").load(layout.delta_table_uri("dim_member"))
    dim_current = {r[0] for r in dim.where("is_current").select("member_id").collect()}
    quarantined = {r[0] for r in spark.read.format("delta").load(layout.delta_table_uri("member_quarantine"))
                   .select(F.lower("member_id")).collect() if r[0]}
    version = DeltaTable.forPath(spark, path).history(1).collect()[0]["version"]
    return member, len(rows) - len(member), dim_current, quarantined, version


def _versions_readable(spark, first: int, last: int) -> int:
    """Read every version of the member table in (first, last]; the number read (an unreadable one raises)."""
    from include import layout

    for v in range(first + 1, last + 1):
        spark.read.format("delta").option("versionAsOf", v).load(layout.delta_table_uri("member")).count()
    return max(0, last - first)


def _run(api, dag_id: str, run_id: str) -> tuple[str, float]:
    from dev.airflow_api import airflow_cli

    started = time.monotonic()
    airflow_cli("dags", "trigger", dag_id, "--run-id", run_id)
    return api.wait_for_run(dag_id, run_id, timeout=1800), time.monotonic() - started


def _reset(members: int, seed: int) -> None:
    from dev import pii_scan, seed_members

    s3 = pii_scan.s3_client()
    for bucket in (os.environ["LANDING_BUCKET"], os.environ["LAKEHOUSE_BUCKET"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            if keys := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    conn = seed_members.connect_root()
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{os.environ['MYSQL_DATABASE']}`")
    assert seed_members.main(["--rows", str(members), "--seed", str(seed), "--dirty"]) == 0


def soak(runs: int, members: int, change: float, seed: int, maintenance_every: int, replay_every: int) -> dict:
    from pyspark.sql import SparkSession

    from dev.airflow_api import AirflowApi
    from dev.demo_report import task_result
    from dev.local_spark import local_spark_conf
    from dev.seed_members import connect_root

    if os.environ.get("LAKEHOUSE_PROFILE") != "test":
        raise SystemExit("the soak empties the test profile's database and buckets: run it with LAKEHOUSE_PROFILE=test")
    api = AirflowApi()
    requests_patch(api, "dags?dag_id_pattern=%25", {"is_paused": False})
    _reset(members, seed)
    conn = connect_root(os.environ["MYSQL_DATABASE"])
    expected = Expected(_source_rows(conn))
    rng = random.Random(f"soak-{seed}")  # not the seeding generator's sequence: its ids would come again
    builder = SparkSession.builder.master("local[2]").appName("soak").config("spark.ui.showConsoleProgress", "false")
    for key, value in local_spark_conf().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    version, days = -1, []
    for day in range(1, runs + 1):
        plan = plan_day(rng, expected.source, day, change) if day > 1 else Day()
        _apply_to_source(conn, plan)
        expected.apply(plan)
        record = {"day": day, "inserts": len(plan.inserts), "updates": len(plan.updates),
                  "deletes": len(plan.deletes), "rows_changed": plan.changed,
                  "dirty_at_source": len(expected.dirty_ids), "source_rows": len(expected.source)}
        run_id = f"soak__{stamp}__day{day:02d}"
        state, seconds = _run(api, "member_pipeline", run_id)
        record |= {"state": state, "seconds": round(seconds, 1)}
        if state == "success":
            unchanged = api.task_states("member_pipeline", run_id).get("confirm_unchanged") == "success"
            counts = task_result(api, "member_pipeline", run_id, "confirm_unchanged" if unchanged else "reconcile")
            record["change_detection"] = "no changes" if unchanged else counts["change_detection"]
            record["manifest_rows_equal_source"] = counts["landed_rows"] == len(expected.source)
            member, duplicates, dim_current, quarantined, new_version = _tables(spark)
            record["violations"] = violations(expected, member, duplicates, dim_current, quarantined)
            record["versions_read"] = _versions_readable(spark, version, new_version)
            version = new_version
            if replay_every and day % replay_every == 0:
                replay_state, _ = _run(api, "member_pipeline", run_id + "__replay")
                replay_version = _tables(spark)[4]
                record["replay_changed_nothing"] = replay_state == "success" and replay_version == version
            if maintenance_every and day % maintenance_every == 0:
                record["maintenance"], _ = _run(api, "lakehouse_maintenance", run_id + "__maintenance")
                version = _tables(spark)[4]  # OPTIMIZE's commit is read with the next day's versions
        days.append(record)
        print(json.dumps(record), flush=True)
        if state != "success":
            break
    spark.stop()
    return summarize(days, members=members, change=change, seed=seed)


def requests_patch(api, path: str, body: dict) -> None:
    import requests

    requests.patch(f"{api.base_url}/api/v2/{path}", json=body, headers={"Authorization": f"Bearer {api.token()}"},
                   timeout=30).raise_for_status()


def summarize(days: list[dict], **parameters) -> dict:
    """Totals over the days: runs, rows changed, rows lost (the sum of every violation), checks failed."""
    lost = sum(sum(d.get("violations", {}).values()) for d in days)
    failed = [d["day"] for d in days if d["state"] != "success" or not d.get("manifest_rows_equal_source", True)
              or d.get("replay_changed_nothing") is False or d.get("maintenance", "success") != "success"]
    return {"parameters": parameters, "runs": len(days), "runs_succeeded": sum(d["state"] == "success" for d in days),
            "rows_changed": sum(d["rows_changed"] for d in days), "rows_lost": lost, "days_failing_a_check": failed,
            "versions_read": sum(d.get("versions_read", 0) for d in days), "days": days}


def markdown(report: dict) -> str:
    p = report["parameters"]
    lines = [f"# Soak: {report['runs']} daily runs of member_pipeline ({report['date']})", "",
             f"Command: `{report['command']}`", "",
             f"Source: {p['members']:,} generated members plus the seed's dirty rows, ~{p['change']:.0%} of "
             "the members changed before each run "
             f"(seed {p['seed']}).", "",
             "| runs | succeeded | rows changed | rows lost | days failing a check | table versions read |",
             "|---:|---:|---:|---:|---|---:|",
             f"| {report['runs']} | {report['runs_succeeded']} | {report['rows_changed']:,} | {report['rows_lost']} | "
             f"{report['days_failing_a_check'] or 'none'} | {report['versions_read']} |", "",
             "| day | inserts | updates | deletes | change detection | run s | violations | replay | maintenance |",
             "|---:|---:|---:|---:|---|---:|---|---|---|"]
    for d in report["days"]:
        bad = {k: v for k, v in d.get("violations", {}).items() if v}
        replay = {None: "", True: "unchanged", False: "CHANGED"}[d.get("replay_changed_nothing")]
        lines.append(f"| {d['day']} | {d['inserts']} | {d['updates']} | {d['deletes']} | "
                     f"{d.get('change_detection', d['state'])} | {d['seconds']} | {bad or 'none'} | "
                     f"{replay} | "
                     f"{d.get('maintenance', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="daily runs (default 30)")
    parser.add_argument("--members", type=int, default=10_000, help="generated members (default 10000)")
    parser.add_argument("--change", type=float, default=0.02,
                        help="share of members changed before each run (default 0.02)")
    parser.add_argument("--seed", type=int, default=23, help="of the source and its changes (default 23)")
    parser.add_argument("--maintenance-every", type=int, default=7, help="days; 0: never (default 7)")
    parser.add_argument("--replay-every", type=int, default=10, help="days; 0: never (default 10)")
    parser.add_argument("--out", type=Path, default=Path(".local/soak"),
                        help="results directory (default .local/soak; the committed ones are in benchmarks/results)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.members < 1 or not 0 < args.change <= 1:
        parser.error("--runs and --members must be at least 1, --change a share in (0, 1]")
    if args.maintenance_every < 0 or args.replay_every < 0:
        parser.error("--maintenance-every and --replay-every are days (0: never)")
    date = dt.date.today().isoformat()  # of the start: the file is checked before a run of hours
    stem = args.out / f"soak-{date}"
    if taken := [p.name for p in (stem.with_suffix(".json"), stem.with_suffix(".md")) if p.exists()]:
        parser.error(f"{args.out} already holds {', '.join(taken)}: remove it or pass another --out")
    report = soak(args.runs, args.members, args.change, args.seed, args.maintenance_every, args.replay_every)
    report["date"] = date
    report["command"] = "python -m benchmarks.soak " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["rows_lost"] == 0 and not report["days_failing_a_check"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
