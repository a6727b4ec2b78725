"""Run the member extract outside Airflow, e.g. for a backfill or while debugging.

    python -m include.extract --date 2026-11-26        # batch extract_date=2026-11-26
    dev/stack.sh run python -m include.extract --date 2026-11-26   # with the local stack's connections
"""

import argparse
import datetime as dt
import json
import logging

from include.extract.run import extract_member_batch
from include.landing.batch_id import daily_batch_id


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Extract the MySQL member table to a Parquet batch on S3.")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date.today(),
                        help="the extraction interval's date (default: today)")
    # unique per invocation: two command-line extracts are two runs, and one must not take over the
    # other's lease as if it were its own killed try (include/landing/lease.py)
    parser.add_argument("--run-id", default=f"cli__{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    print(json.dumps(extract_member_batch(daily_batch_id(args.date), args.run_id)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
