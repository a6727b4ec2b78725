"""Results and parameters as types (lakehouse_jobs.results): what a job writes, every reader parses, and a
file with a missing or mistyped key is refused with every problem named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from lakehouse_jobs.results import (
    ErasureParams,
    InvoiceLoadParams,
    MaintenanceResult,
    MemberMergeParams,
    MemberMergeResult,
    ResultError,
)

pytestmark = pytest.mark.unit

MERGE = MemberMergeResult(
    batch_id="b", manifest_rows=3, unchanged_rows=1, valid_rows=1, quarantined_rows=1,
    quarantine_reasons={"invalid_email": 1}, deleted_rows=0, merge_source_rows=1, delta_version=None,
    dim_member_version=4, commit_tag="t", rows_before=2, rows_after=3, duplicate_keys=0, dim_member_rows=3,
    dim_member_current_rows=3, change_detection="change set",
)


def test_a_result_round_trips_and_an_absent_optional_key_stays_absent():
    assert MemberMergeResult.from_json(MERGE.to_json()) == MERGE
    assert "rows_absent_from_snapshot" not in MERGE.to_dict() and MERGE.to_dict()["delta_version"] is None
    snapshot = dataclasses.replace(MERGE, rows_absent_from_snapshot=0)
    assert MemberMergeResult.from_json(snapshot.to_json()).rows_absent_from_snapshot == 0


def test_every_problem_of_a_result_file_is_named():
    data = MERGE.to_dict() | {"valid_rows": "1", "quarantine_reasons": {"x": 1.5}, "extra": 1}
    del data["commit_tag"]
    with pytest.raises(ResultError) as e:
        MemberMergeResult.from_dict(data, source="s3://lake/_results/member/b.json")
    message = str(e.value)
    for problem in ("s3://lake/_results/member/b.json", "valid_rows is '1', not int", "quarantine_reasons['x']",
                    "commit_tag is missing", "extra is not a key"):
        assert problem in message
    with pytest.raises(ResultError, match="not JSON"):
        MemberMergeResult.from_json("{")
    with pytest.raises(ResultError, match="True, not int"):  # a bool is not a count
        MemberMergeResult.from_dict(MERGE.to_dict() | {"valid_rows": True})


@pytest.mark.parametrize(("text", "message"), [
    (MERGE.to_json().replace('"valid_rows": 1', '"valid_rows": -1'), "valid_rows is -1: .* never negative"),
    (MERGE.to_json().replace('"invalid_email": 1', '"invalid_email": -1'), "never negative"),
    (None, "is not JSON"),
    ("[]", "MemberMergeResult must be a JSON object, not list"),
])
def test_a_negative_count_or_a_non_object_is_refused(text, message):
    with pytest.raises(ResultError, match=message):
        MemberMergeResult.from_json(text)


def test_the_maintenance_file_is_the_mapping_it_always_was():
    result = MaintenanceResult(tables={"member": {"files_before": 3, "files_after": 1}})
    assert result.to_dict() == {"member": {"files_before": 3, "files_after": 1}}
    assert MaintenanceResult.from_json(result.to_json()) == result


def test_parameters_round_trip_through_a_command_line():
    params = MemberMergeParams(manifest="m", tables_root="t", result_path="r", max_delete_ratio=0.1)
    argv = [f"--{k}={v}" for k, v in params.to_args().items()]  # as the runner passes named_parameters
    assert MemberMergeParams.parse(argv) == params
    invoice = InvoiceLoadParams.parse(["--incoming", "i", "--member-cards", "c", "--tables-root", "t",
                                       "--result-path", "r"])
    assert invoice.incoming == "i" and invoice.manifest is None and invoice.max_files == 50_000
    assert "manifest" not in invoice.to_args() and "batch-id" not in invoice.to_args()


@pytest.mark.parametrize("argv", [
    ["--member-cards", "c", "--tables-root", "t", "--result-path", "r"],  # neither source
    ["--incoming", "i", "--manifest", "m", "--member-cards", "c", "--tables-root", "t", "--result-path", "r"],
])
def test_invoice_load_takes_exactly_one_source(argv):
    with pytest.raises(SystemExit) as e:
        InvoiceLoadParams.parse(argv)
    assert e.value.code == 2


def test_a_missing_parameter_is_a_usage_error():
    with pytest.raises(SystemExit):
        ErasureParams.parse(["--tables-root", "t"])


MERGE_ARGV = ["--manifest", "m", "--tables-root", "t", "--result-path", "r"]
INVOICE_ARGV = ["--incoming", "i", "--member-cards", "c", "--tables-root", "t", "--result-path", "r"]
ERASURE_ARGV = ["--member-id", "m", "--tables-root", "t", "--request-id", "q", "--result-path", "r"]


@pytest.mark.parametrize("params_type, argv, message", [
    # a NaN ratio would switch the guard off (every comparison with NaN is false); -1 fails every batch
    *[(MemberMergeParams, [*MERGE_ARGV, f"--{name}={value}"], "is not a share between 0 and 1")
      for name in ("max-quarantine-ratio", "max-delete-ratio") for value in ("nan", "inf", "-inf", "-1", "2")],
    (MemberMergeParams, [*MERGE_ARGV, "--max-quarantine-ratio=abc"], "invalid share value"),
    (MemberMergeParams, [*MERGE_ARGV, "--max-q=0.9"], "unrecognized arguments"),  # no abbreviations
    # -1 would load all files but the last one (unseen[:-1]) and count one more deferred than exist
    *[(InvoiceLoadParams, [*INVOICE_ARGV, f"--max-files={v}"], "at least 1") for v in ("0", "-1")],
    # checked before the erasure deletes anything, not after its VACUUM
    *[(ErasureParams, [*ERASURE_ARGV, f"--landing={v}"], "is not") for v in ("not json", "[1]", '"x"')],
])
def test_a_bad_value_is_a_usage_error_naming_it(capsys, params_type, argv, message):
    with pytest.raises(SystemExit) as e:
        params_type.parse(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_good_values_at_the_edges_are_taken():
    edges = MemberMergeParams.parse([*MERGE_ARGV, "--max-delete-ratio=0", "--max-quarantine-ratio=1"])
    assert (edges.max_delete_ratio, edges.max_quarantine_ratio) == (0, 1)
    assert InvoiceLoadParams.parse([*INVOICE_ARGV, "--max-files=1"]).max_files == 1
    assert ErasureParams.parse([*ERASURE_ARGV, '--landing={"rows_removed": 2}']).landing == '{"rows_removed": 2}'


def test_the_airflow_side_imports_results_and_keys_without_spark_or_arrow():
    code = ("import sys, lakehouse_jobs.results, lakehouse_jobs.keys; "
            "assert not {'pyspark', 'pyarrow'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
