"""Each job's parameters and result as types, defined once: the job parses its parameters and writes its
result with them, include/databricks_runs.py builds the run's parameters with them, and every reader of a
result file (the DAGs' checks, the demo, the benchmarks) parses it with them.

Imports neither pyspark nor pyarrow: the Airflow side imports this module.

Results: ``to_json`` writes the JSON the job leaves at ``--result-path``; ``from_json`` / ``from_dict``
parse it and raise ResultError naming the file and every missing, unknown or mistyped key, instead of a
KeyError deep inside a check. Parameters: ``to_args`` gives a run's ``named_parameters``
({"tables-root": "s3://..."}; the runner passes them as ``--tables-root=s3://...``), ``parse`` reads them
back from a command line (argparse; exits with status 2 and a usage message on a bad one).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self


class ResultError(ValueError):
    """A result file that is not the job's result: every problem in one message."""


def _type_problem(value: Any, hint: Any, where: str) -> list[str]:
    """Where `value` does not have the type `hint` (int, float, str, None, X | None, dict[K, V])."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if any(not _type_problem(value, a, where) for a in args):
            return []
        return [f"{where} is {value!r}, not {' or '.join(getattr(a, '__name__', str(a)) for a in args)}"]
    if hint is type(None):
        return [] if value is None else [f"{where} is {value!r}, not null"]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where} is {value!r}, not an object"]
        key_type, value_type = args
        return [p for k, v in value.items()
                for p in _type_problem(k, key_type, f"{where} key") + _type_problem(v, value_type, f"{where}[{k!r}]")]
    # JSON has one number type: an integral float is not accepted as an int, an int is accepted as a float
    if hint is int and isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [f"{where} is {value!r}: every whole number of a result is a count or a version, never negative"]
    ok = (isinstance(value, int) and not isinstance(value, bool) if hint is int
          else isinstance(value, (int, float)) and not isinstance(value, bool) if hint is float
          else isinstance(value, hint))
    return [] if ok else [f"{where} is {value!r}, not {hint.__name__}"]


class JobResult:
    """What every result dataclass shares: JSON out, checked JSON in. A field with metadata
    ``{"omit_none": True}`` is left out of the JSON when None (and may be absent when read)."""

    @classmethod
    def from_dict(cls, data: Any, source: str = "result") -> Self:
        if not isinstance(data, dict):
            raise ResultError(f"{source}: {cls.__name__} must be a JSON object, not {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        problems = []
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if not f.metadata.get("omit_none"):
                    problems.append(f"{f.name} is missing")
                continue
            problems += _type_problem(data[f.name], hints[f.name], f.name)
        known = {f.name for f in dataclasses.fields(cls)}
        problems += [f"{k} is not a key of {cls.__name__}" for k in sorted(set(data) - known)]
        if problems:
            raise ResultError(f"{source} is not a valid {cls.__name__}: " + "; ".join(problems))
        return cls(**{k: v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "result") -> Self:
        """Parse a result file's text; ResultError for invalid JSON or a wrong shape."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as e:  # TypeError: not text at all (None, a number)
            raise ResultError(f"{source} is not JSON: {e}") from None
        return cls.from_dict(data, source)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not (f.metadata.get("omit_none") and getattr(self, f.name) is None)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class MemberMergeResult(JobResult):
    """member_merge's facts for the DAG's reconciliation (include/reconcile.reconcile_batch):
    manifest_rows = unchanged_rows + valid_rows + quarantined_rows; versions are None when nothing was
    committed; rows_absent_from_snapshot only after a snapshot (must be 0)."""

    batch_id: str
    manifest_rows: int
    unchanged_rows: int
    valid_rows: int
    quarantined_rows: int
    quarantine_reasons: dict[str, int]
    deleted_rows: int
    merge_source_rows: int
    delta_version: int | None
    dim_member_version: int | None
    commit_tag: str
    rows_before: int
    rows_after: int
    duplicate_keys: int
    dim_member_rows: int
    dim_member_current_rows: int
    # "change set" when the job applied the extract's change set, else "full snapshot: <why>"
    change_detection: str
    rows_absent_from_snapshot: int | None = field(default=None, metadata={"omit_none": True})
    # members with a current dim_member version whose standardised attributes changed (a new version): after
    # a rule library upgrade (change_detection names it), how many members the new rules answer differently
    attributes_changed: int | None = field(default=None, metadata={"omit_none": True})


@dataclass(frozen=True)
class InvoiceLoadResult(JobResult):
    """invoice_load's counts (include/reconcile.check_invoice_load): files_seen = skipped + deferred +
    parsed, where parsed counts the files judged this run (parsed, or too_large: refused unread);
    files_parsed = invoices_loaded + quarantined + invoices_superseded + files_changed_during_run;
    invoices_loaded = invoices_new + invoices_replaced + invoices_unchanged; lines_loaded = lines_inserted +
    lines_updated. versions: {table: the last version this run committed, or None}."""

    batch_id: str
    commit_tag: str
    files_seen: int
    files_skipped_already_processed: int
    files_skipped_same_content: int
    files_changed_during_run: int
    files_deferred: int
    files_parsed: int
    invoices_loaded: int
    invoices_new: int
    invoices_replaced: int
    invoices_unchanged: int
    invoices_superseded: int
    lines_loaded: int
    lines_inserted: int
    lines_updated: int
    lines_deleted: int
    quarantined: int
    quarantine_reasons: dict[str, int]
    member_resolution: dict[str, int]
    members_fixed_up: dict[str, int]
    versions: dict[str, int | None]


@dataclass(frozen=True)
class ErasureResult(JobResult):
    """member_erasure's counts only, never the id: rows removed and rows left (must be 0) per table, and
    the request's keyed hash."""

    request_hash: str
    rows_removed: dict[str, int]
    rows_left: dict[str, int]


@dataclass(frozen=True)
class MaintenanceResult(JobResult):
    """table_maintenance's data files per table before and after: {table: {"files_before": n,
    "files_after": n}}."""

    tables: dict[str, dict[str, int]]

    # the file is the mapping itself, as the job wrote it before this type existed
    @classmethod
    def from_dict(cls, data: Any, source: str = "result") -> Self:
        return super().from_dict({"tables": data}, source)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.tables)


# --------------------------------------------------------------------------------------- parameters


def _param(help: str, default: Any = dataclasses.MISSING, *, choice_of: str | None = None,
           parse: Callable[[str], Any] | None = None) -> Any:
    """A parameter: its --help text; `choice_of` names a group of which exactly one must be given; `parse`
    turns the command line's text into the value and refuses a bad one (default: the field's type)."""
    return field(default=default, metadata={"help": help, "choice_of": choice_of, "parse": parse})


# Value checks of the command line. A guard compared with NaN is off (every comparison with NaN is false),
# so each refuses NaN and the infinities as well as values out of range. argparse turns ArgumentTypeError
# into "argument --name: <message>" and exit status 2.
def share(text: str) -> float:
    """A share of a table, 0 to 1 inclusive."""
    value = float(text)
    if not 0.0 <= value <= 1.0:  # false for NaN too
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def currency_code(text: str) -> str:
    """An ISO 4217 alphabetic code's shape, three capital letters (whether rates exist for it, the job
    checks: lakehouse_jobs.invoice.exchange_rates.check_reporting_currency)."""
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 4217 currency code (three capital letters)")
    return text


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def positive_number(text: str) -> float:
    """A finite number (of seconds, of hours) above 0."""
    value = float(text)
    if not 0 < value < float("inf"):  # false for NaN too
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 0")
    return value


def json_object(text: str) -> str:
    """The text of a JSON object, checked before the job changes anything, passed on as text."""
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not JSON") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a JSON object")
    return text


class JobParams:
    """What every parameters dataclass shares; ENTRY_POINT is the wheel's entry point taking them."""

    ENTRY_POINT: ClassVar[str]
    DESCRIPTION: ClassVar[str]

    def to_args(self) -> dict[str, str]:
        """A run's named_parameters: every parameter that is set, by its option name. A value may be a
        Jinja template (the operator renders the run's JSON), so none is checked here."""
        return {f.name.replace("_", "-"): str(getattr(self, f.name)) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> Self:
        """The parameters from a command line (default sys.argv); argparse exits with status 2 on a bad one."""
        hints = typing.get_type_hints(cls)
        # allow_abbrev=False: `--max-q 0.9` is a typo to refuse, not a prefix to guess
        parser = argparse.ArgumentParser(prog=cls.ENTRY_POINT, description=cls.DESCRIPTION, allow_abbrev=False)
        groups: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            target = parser
            if group := f.metadata.get("choice_of"):
                if group not in groups:
                    groups[group] = parser.add_mutually_exclusive_group(required=True)
                target = groups[group]
            required = f.default is dataclasses.MISSING
            target.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=f.metadata["parse"] or kind,
                                required=required and not group, help=f.metadata["help"],
                                default=None if required else f.default)
        return cls(**vars(parser.parse_args(argv)))


@dataclass(frozen=True)
class MemberMergeParams(JobParams):
    ENTRY_POINT: ClassVar[str] = "member_merge"
    DESCRIPTION: ClassVar[str] = "Apply one published member batch to the Delta tables member and dim_member."

    manifest: str = _param("the batch's _manifest.json")
    tables_root: str = _param("where the Delta tables member, dim_member, member_quarantine and member_batches live")
    result_path: str = _param("JSON file of counts, written last")
    max_quarantine_ratio: float = _param("fail when quarantined rows / manifest rows exceeds this (default 0.05)",
                                         0.05, parse=share)
    max_delete_ratio: float = _param(
        "fail before any change when a snapshot would delete more than this share of the table (default 0.05): "
        "an empty or partial source is likelier than a mass deletion", 0.05, parse=share)
    change_state: str | None = _param(
        "where to keep the change state the next extract compares the source with (lakehouse_jobs.change_state); "
        "none kept when unset", None)


MAX_FILES = 50_000  # invoice_load reads at most this many new files (oldest first); the rest wait (files_deferred)
# a real invoice PDF is kilobytes; Spark's binaryFile holds a file whole in one value (at most 2 GiB)
MAX_FILE_BYTES = 64 * 1024 * 1024
# a one-page invoice parses in ~30 ms (benchmarks/invoice_parse_bench.py) and the parser's MAX_PAGES pages in
# seconds: a minute per file is far beyond any file it can read, and short beside a run's timeout
PARSE_SECONDS = 60.0
REPORTING_CURRENCY = "USD"  # the invoice facts' *_reporting amounts (lakehouse_jobs.invoice.exchange_rates)


@dataclass(frozen=True)
class InvoiceLoadParams(JobParams):
    ENTRY_POINT: ClassVar[str] = "invoice_load"
    DESCRIPTION: ClassVar[str] = "Load retail invoice PDFs into the invoice star schema."

    member_cards: str = _param("the member_card extract: Parquet file or directory, or a batch's _manifest.json")
    tables_root: str = _param("where the invoice tables (and member_merge's dim_member) live")
    result_path: str = _param("JSON file of counts, written last")
    manifest: str | None = _param("a file list (lakehouse_jobs.manifest.FileList, JSON) naming exactly the files "
                                  "to load", None, choice_of="source")
    incoming: str | None = _param("prefix (s3://... or a local directory) whose files are invoices; read "
                                  "recursively, originals left in place", None, choice_of="source")
    batch_id: str | None = _param("this run's id in _batch_id columns (default: invoice_load-<UTC time>)", None)
    max_files: int = _param("read at most this many new files, oldest first; the rest wait for the next run",
                            MAX_FILES, parse=positive_int)
    max_file_bytes: int = _param("quarantine a larger file as too_large from its listed size, without reading it",
                                 MAX_FILE_BYTES, parse=positive_int)
    parse_seconds: float = _param("quarantine a file whose parse takes longer as parse_timeout", PARSE_SECONDS,
                                  parse=positive_number)
    reporting_currency: str = _param("ISO 4217 code the facts' *_reporting amounts are in (ECB reference rates)",
                                     REPORTING_CURRENCY, parse=currency_code)


@dataclass(frozen=True)
class ErasureParams(JobParams):
    ENTRY_POINT: ClassVar[str] = "member_erasure"
    DESCRIPTION: ClassVar[str] = "Erase one member from the Delta tables, including their history."

    member_id: str = _param("the member's UUID (lower case)")
    tables_root: str = _param("where the Delta tables live")
    request_id: str = _param("the Airflow run that asks (recorded)")
    result_path: str = _param("JSON file of counts, written last")
    landing: str = _param("JSON counts of the landing erasure that ran before (recorded with the request)", "{}",
                          parse=json_object)
    writer_hours: float = _param("the longest a run writing the tables may take (its timeout): files no version "
                                 "uses and younger than this may be a running writer's, and are kept",
                                 1.0, parse=positive_number)


MIN_RETAIN_HOURS = 7 * 24  # Delta's default delta.deletedFileRetentionDuration: VACUUM's safety retention


def retention_hours(text: str) -> float:
    """VACUUM's retention in hours: finite and at least MIN_RETAIN_HOURS (only the erasure job, which purges
    one member's files on purpose, goes below it)."""
    value = float(text)
    if not MIN_RETAIN_HOURS <= value < float("inf"):  # false for NaN too
        raise argparse.ArgumentTypeError(f"{text!r} hours is below the 7-day safety retention ({MIN_RETAIN_HOURS} h) "
                                         "or not a finite number; only the erasure job may go below it")
    return value


@dataclass(frozen=True)
class MaintenanceParams(JobParams):
    ENTRY_POINT: ClassVar[str] = "table_maintenance"
    DESCRIPTION: ClassVar[str] = "OPTIMIZE and VACUUM every declared Delta table."

    tables_root: str = _param("where the Delta tables live")
    result_path: str = _param("JSON file of counts, written last")
    retain_hours: float = _param(f"VACUUM retention, at least {MIN_RETAIN_HOURS} (7 days)", float(MIN_RETAIN_HOURS),
                                 parse=retention_hours)
