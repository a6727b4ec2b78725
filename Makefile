# Two commands for a fresh machine: `make demo` (the member pipeline end to end) and `make test`.
# Everything else here is a building block of those two.
SHELL := /bin/bash
STACK := dev/stack.sh
PYTEST_ARGS ?=

.PHONY: demo test install up down status unit lint lock bench scale history-bench

demo: up ## install, start the local stack, run the member pipeline, print the reconciliation report
	@$(STACK) run python -m dev.demo

test: lint up ## install, start the local stack, lint, run the whole suite (unit, integration, end-to-end)
	@$(STACK) run python -m pytest $(PYTEST_ARGS)

lint: install ## ruff, with Airflow's AIR rules (pyproject.toml)
	@.venv/bin/ruff check .

install:
	@$(STACK) install

up: install
	@$(STACK) start

down: ## stop every local service; data stays in .local/
	@$(STACK) stop

status:
	@$(STACK) status

unit: install ## only the tests that need no service
	@$(STACK) run python -m pytest -m unit $(PYTEST_ARGS)

# dev.lock first (it also takes the jobs package's own dependencies from spark_jobs/pyproject.toml); the
# airflow and runtime locks are constrained by it, so a package has one version in all three.
LOCK_ARGS := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes
lock: ## recompile requirements/*.lock from requirements/*.in
	@cd requirements && ../.venv/bin/uv pip compile -q dev.in ../spark_jobs/pyproject.toml $(LOCK_ARGS) -o dev.lock \
	  && for f in airflow runtime; do ../.venv/bin/uv pip compile -q $$f.in -c dev.lock $(LOCK_ARGS) -o $$f.lock; done

bench: up ## extract benchmark (see benchmarks/README.md)
	@$(STACK) run python -m benchmarks.extract_bench

scale: up ## the member pipeline through the DAG at 1M and 5M members (benchmarks/member_scale.py, ~30 min)
	@$(STACK) run python -m benchmarks.member_scale

history-bench: install ## the member job at 5M members: a 5% change and an unchanged replay against a full overwrite (benchmarks/member_history_bench.py)
	@.venv/bin/python -m benchmarks.member_history_bench --members 5000000 $(BENCH_ARGS)
