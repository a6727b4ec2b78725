"""The runner fixtures (tests/dev/runner_harness.py) for every test module of tests/dev."""

from tests.dev.runner_harness import own_runner, runner  # noqa: F401
