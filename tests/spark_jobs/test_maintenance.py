"""lakehouse_jobs.maintenance: compaction and a VACUUM that never goes below 7 days."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable

from lakehouse_jobs import maintenance as table_maintenance
from lakehouse_jobs.delta import ensure_table
from lakehouse_jobs.invoice.tables import INVOICE_LEDGER
from lakehouse_jobs.tables import MEMBER_BATCHES


@pytest.mark.integration
def test_small_files_are_compacted_and_recent_files_kept(spark, tmp_path):
    path = str(tmp_path / "member_batches")
    ensure_table(spark, MEMBER_BATCHES, path)
    for n in range(3):  # three daily commits, three small files
        spark.sql(f"INSERT INTO delta.`{path}` VALUES ('b{n}', current_timestamp(), current_timestamp(), "
                  f"{n}, {n}, '{{}}')")
    files_on_disk = {p.name for p in (tmp_path / "member_batches").glob("*.parquet")}

    result = table_maintenance.main(["--tables-root", str(tmp_path), "--result-path", str(tmp_path / "r.json")],
                                    spark=spark)

    assert result.to_dict() == {"member_batches": {"files_before": 3, "files_after": 1}}
    assert DeltaTable.forPath(spark, path).toDF().count() == 3
    # the compacted-away files are younger than 7 days: VACUUM keeps them for readers of older versions
    assert files_on_disk <= {p.name for p in (tmp_path / "member_batches").glob("*.parquet")}


@pytest.mark.integration
def test_the_invoice_tables_are_maintained_too(spark, tmp_path):
    """The invoice star schema gets its small files compacted like the member tables (issue 23 item 7)."""
    path = str(tmp_path / "invoice_ledger")
    ensure_table(spark, INVOICE_LEDGER, path)
    for n in range(2):  # two invoice runs, two small files
        spark.sql(f"INSERT INTO delta.`{path}` VALUES ('{n:064x}', 's3://in/{n}.pdf', 1, current_timestamp(), "
                  f"'quarantined', NULL, current_timestamp(), 'run-{n}')")

    result = table_maintenance.main(["--tables-root", str(tmp_path), "--result-path", str(tmp_path / "r.json")],
                                    spark=spark)

    assert result.to_dict() == {"invoice_ledger": {"files_before": 2, "files_after": 1}}
    assert DeltaTable.forPath(spark, path).toDF().count() == 2


@pytest.mark.unit
@pytest.mark.parametrize("hours", ["24", "nan", "inf", "-1"])
def test_a_retention_below_seven_days_or_not_finite_is_refused_before_any_work(tmp_path, capsys, hours):
    # NaN would pass a `hours < 168` guard (every comparison with NaN is false) and VACUUM at 0 hours
    with pytest.raises(SystemExit) as exit_info:
        table_maintenance.main(["--tables-root", str(tmp_path), f"--retain-hours={hours}",
                                "--result-path", str(tmp_path / "r.json")])
    assert exit_info.value.code == 2
    assert "below the 7-day safety retention" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
