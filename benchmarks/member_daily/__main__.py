"""`python -m benchmarks.member_daily ...`: see the package's docstring and `--help`."""

from benchmarks.member_daily.cli import main

raise SystemExit(main())
