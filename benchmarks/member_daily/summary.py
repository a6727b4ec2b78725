"""What limits a load, and the summary and targets over repeats: medians of this run only."""

from __future__ import annotations

import os

from benchmarks.harness.results import stat
from benchmarks.member_daily.config import (
    AIRFLOW_SHARE,
    JOB_PEAK_GIB,
    STEP_LABELS,
    STEPS,
    TARGETS_VS_DLT,
    TARGETS_VS_SAME_WORK,
)


def limit_text(run: dict) -> str:
    """What limits a load, from where the machine's CPU went during it (measured, not guessed): how busy the
    machine was and how much of that was someone else's, the cores each kind of process of the contender used
    on average, time queued behind other runs of the shared runner, and the slowest phases by their own clocks."""
    cores = os.cpu_count() or 1
    wall = run["wall_s"]
    cpu = dict(run["cpu_s"])
    db, s3 = run.get("cpu_mariadb_s") or 0.0, run.get("cpu_minio_s") or 0.0
    others = max(run.get("cpu_others_s") or 0.0, 0.0) + (run.get("cpu_bench_airflow_idle_s") or 0.0)
    machine_busy = (sum(cpu.values()) + db + s3 + others) / (wall * cores)
    others_share = others / (wall * cores)
    parts = {**{k: v for k, v in cpu.items() if v >= 0.05 * wall}, "mariadbd": db, "minio": s3}
    top = sorted(((v, k) for k, v in parts.items() if v >= 0.01 * wall), reverse=True)[:3]
    spent = ", ".join(f"{k} {v / wall:.2f}" for v, k in top)
    if machine_busy >= 0.85 and others_share >= 0.25:
        head = f"CPU, shared: machine {machine_busy:.0%} busy, {others_share:.0%} of it others'"
    elif machine_busy >= 0.85:
        head = f"CPU-bound: machine {machine_busy:.0%} busy"
    elif top and top[0][0] / wall >= 0.85:
        head = f"one core: {top[0][1]} (single-threaded), machine {machine_busy:.0%} busy"
    else:
        head = f"waiting: machine {machine_busy:.0%} busy"
    text = f"{head}; cores used: {spent}"
    if run["contender"] in ("dag", "job"):
        d = run.get("databricks", {})
        if (d.get("queue_s") or 0) >= 1:
            text += f"; queued {d['queue_s']:.0f} s behind other runs on the runner"
        worst = sorted((d.get("job_steps_s") or {}).items(), key=lambda kv: -kv[1])[:2]
        if worst:
            text += "; job steps " + ", ".join(f"{k} {v:.0f} s" for k, v in worst)
        if d.get("start_and_stop_s") is not None:
            text += f", start+stop {d['start_and_stop_s']:.0f} s"
        if run["contender"] == "dag":
            text += f"; Airflow {run['airflow_s']:.0f} s ({run['airflow_share']:.0%})"
    elif run.get("contender_facts", {}).get("steps_s"):
        steps = run["contender_facts"]["steps_s"]
        text += "; " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items() if k != "run")
    return text


def summarize(runs: list[dict]) -> dict:
    summary: dict = {}
    for run in runs:
        if not run["ok"]:
            continue
        by_size = summary.setdefault(str(run["rows"]), {})
        by_size.setdefault(run["contender"], {}).setdefault(run["step"], []).append(run)
    for by_contender in summary.values():
        for by_step in by_contender.values():
            for step, mine in by_step.items():
                by_step[step] = {
                    "runs": len(mine),
                    **{f: stat([r.get(f) for r in mine]) for f in (
                        "wall_s", "rows_per_s", "peak_rss_mib", "job_peak_rss_mib", "cpu_total_s", "cpu_mariadb_s",
                        "cpu_minio_s", "cpu_others_s", "airflow_share", "airflow_s", "dag_wall_s", "extract_s",
                        "airflow_peak_rss_mib")},
                    "databricks": {k: stat([r["databricks"].get(k) for r in mine]) for k in (
                        "run_s", "queue_s", "setup_s", "execution_s", "start_and_stop_s")}
                    if "databricks" in mine[0] else None,
                    "tasks_s": {t: stat([r["tasks_s"][t]["s"] for r in mine]) for t in mine[0]["tasks_s"]}
                    if "tasks_s" in mine[0] else None,
                    # one run's own account (its step times, its cores): the run of median wall time, so
                    # that the column describes a run like the medians beside it
                    "limit": sorted(mine, key=lambda r: r["wall_s"])[len(mine) // 2]["limit"],
                }
    return summary


def evaluate_targets(summary: dict) -> list[dict]:
    """The issue's targets, as ratios of medians measured in this run, at the largest size that has them."""
    targets = []
    sizes = sorted(int(s) for s in summary)
    if not sizes:
        return targets
    rows = sizes[-1]
    by = summary[str(rows)]

    def med(contender, step, field="wall_s"):
        s = by.get(contender, {}).get(step, {}).get(field)
        return s["median"] if s else None

    for step in ("replay", "change", "first"):
        ours, dlt = med("dag", step), med("dlt", step)
        if ours and dlt:
            goal = TARGETS_VS_DLT[step]
            targets.append({"target": f"{STEP_LABELS[step]} through the DAG vs dlt, {rows:,} members",
                            "ratio": ours / dlt, "measured": f"{ours / dlt:.2f}x", "goal": f"<= {goal:g}x",
                            "met": ours / dlt <= goal,
                            "note": f"{ours:.1f} s vs {dlt:.1f} s"})
    for step in STEPS:
        ours, nb = med("dag", step), med("notebook", step)
        if ours and nb:
            targets.append({"target": f"{STEP_LABELS[step]} through the DAG vs the notebook, {rows:,} members",
                            "ratio": ours / nb, "measured": f"{ours / nb:.2f}x", "goal": "< 1x (ahead)",
                            "met": ours < nb,
                            "note": f"{ours:.1f} s vs {nb:.1f} s"})
    for step, goal in TARGETS_VS_SAME_WORK.items():
        ours, same = med("dag", step), med("same_work", step)
        if ours and same:
            targets.append({"target": f"{STEP_LABELS[step]} through the DAG vs the same-work notebook, "
                                      f"{rows:,} members",
                            "ratio": ours / same, "measured": f"{ours / same:.2f}x", "goal": f"<= {goal:g}x",
                            "met": ours / same <= goal, "note": f"{ours:.1f} s vs {same:.1f} s"})
    queued = [(c, step, s["databricks"]["queue_s"]["max"]) for c in ("dag", "job") for step, s in by.get(c, {}).items()
              if s.get("databricks") and s["databricks"]["queue_s"] and s["databricks"]["queue_s"]["max"] >= 1]
    for t in targets:
        if queued and "through the DAG vs" in t["target"]:
            t["note"] += "; some of ours waited behind other runs of the shared runner (see the queue column)"
    peaks = [s["job_peak_rss_mib"]["max"] for c in ("dag", "job") for s in by.get(c, {}).values()
             if s.get("job_peak_rss_mib")]
    if peaks:
        peak = max(peaks)
        targets.append({"target": f"the job's peak RSS (whole spark-submit tree), {rows:,} members",
                        "ratio": peak / 1024 / JOB_PEAK_GIB, "measured": f"{peak / 1024:.2f} GiB",
                        "goal": f"<= {JOB_PEAK_GIB:g} GiB",
                        "met": peak <= JOB_PEAK_GIB * 1024, "note": f"{peak:,.0f} MiB, the highest of every load"})
    shares = [(step, med("dag", step, "airflow_share")) for step in STEPS]
    shares = [(s, v) for s, v in shares if v is not None]
    if shares:
        worst = max(v for _, v in shares)
        targets.append({"target": f"Airflow's share of a daily run, {rows:,} members", "ratio": worst,
                        "measured": f"{worst:.1%} (the highest median)",
                        "goal": f"<= {AIRFLOW_SHARE:.0%}", "met": worst <= AIRFLOW_SHARE,
                        "note": ", ".join(f"{STEP_LABELS[s]} {v:.1%}" for s, v in shares) + " (medians)"})
    return targets
