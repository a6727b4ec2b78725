"""benchmarks/rule_costs.py at the smallest size: it measures every rule and writes its result files."""

from __future__ import annotations

import json

import pytest

from benchmarks import rule_costs

pytestmark = pytest.mark.unit


def test_rule_costs_writes_each_rules_cost_and_the_floor(tmp_path):
    assert rule_costs.main(["--values", "300", "--out", str(tmp_path)]) == 0
    [result] = tmp_path.glob("rule-costs-*.json")
    report = json.loads(result.read_text())
    costs = report["cpu_us_per_value"]
    assert len(costs) == 3 and all(c > 0 for c in costs.values())
    assert report["total_us_per_row"] == pytest.approx(sum(costs.values()), abs=0.05)
    assert report["first_load_floor_s"]["1000000"] == pytest.approx(
        report["total_us_per_row"] * 1_000_000 / report["cores"] / 1e6, abs=0.1)
    assert "Floor of a first load" in result.with_suffix(".md").read_text()
