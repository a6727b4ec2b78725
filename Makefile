# Two commands for a fresh machine: `make demo` (the member and invoice pipelines end to end) and `make test`.
# Everything else here is a building block of those two.
SHELL := /bin/bash
STACK := dev/stack.sh
PYTEST_ARGS ?=

.PHONY: demo test install up down status unit lint lock bench scale history-bench

demo: up ## install, start the local stack, run the member and invoice pipelines, print what each loaded
	@$(STACK) run python -m dev.demo

# The suite runs on the stack's test profile (its own database, buckets and Airflow; dev/stack.sh), so it never
# reads or changes the demo's data; the slowest tests are listed at the end of every run.
test: lint ## install, start the local stack's test profile, lint, run the whole suite (unit, integration, end-to-end)
	@LAKEHOUSE_PROFILE=test $(STACK) start
	@LAKEHOUSE_PROFILE=test $(STACK) run python -m pytest --durations=25 $(PYTEST_ARGS)

lint: install ## ruff, with Airflow's AIR rules, and the import contracts (both in pyproject.toml)
	@.venv/bin/ruff check .
	@.venv/bin/lint-imports --no-logo --no-cache

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

# The walkthrough notebook is stored executed; tests/docs/test_walkthrough_notebook.py fails when a new run's cells
# or kinds of output differ from the stored ones, and this stores it again.
.PHONY: notebook
notebook: up ## execute docs/walkthrough.ipynb on the running stack and store it with its outputs (dev/walkthrough_notebook.py)
	@$(STACK) run python -m dev.walkthrough_notebook

# Screenshots for the docs (docs/images/*.png) from the running stack, after `make demo`; installs Debian's
# chromium and chromium-driver when missing (needs root, as `dev/stack.sh install` does for its packages).
.PHONY: screenshots
screenshots: up ## docs/images/*.png: the Airflow UI and a local run page, by headless Chromium (dev/screenshots.py)
	@command -v chromedriver >/dev/null || (apt-get update -q && apt-get install -y -q chromium chromium-driver)
	@$(STACK) run python -m dev.screenshots

# Every Mermaid diagram in README.md and docs/ rendered by mermaid-cli (npm, into .local/mermaid-cli) with
# Debian's chromium: what GitHub shows, checked before a push.
MERMAID_CLI := 11.17.0
.PHONY: docs-check
docs-check: install ## render every Mermaid diagram of the docs (dev/check_mermaid.py)
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium chromium-driver)
	@test -x .local/mermaid-cli/node_modules/.bin/mmdc || (mkdir -p .local/mermaid-cli && cd .local/mermaid-cli \
	  && PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund @mermaid-js/mermaid-cli@$(MERMAID_CLI))
	@.venv/bin/python -m dev.check_mermaid

# The member daily benchmark (issue 11). Its dlt contender runs in a venv of its own, .local/bench-venv, from
# requirements/bench.lock (compiled from bench.in with the same arguments as the other locks); the harness
# creates or re-syncs that venv, and fetches the MySQL JDBC driver of the notebook contender into the download
# cache, when they are missing or out of date.
.PHONY: bench-lock daily-bench
bench-lock: ## recompile requirements/bench.lock (dlt, deltalake, connectorx for the daily benchmark)
	@cd requirements && ../.venv/bin/uv pip compile -q bench.in $(LOCK_ARGS) -o bench.lock

daily-bench: up ## the daily run through the DAG, the job alone, dlt and a notebook at 1M and 5M members (benchmarks/member_daily/)
	@$(STACK) run python -c 'from benchmarks.member_daily.installs import ensure_bench_venv, ensure_jdbc_jar; ensure_bench_venv(); ensure_jdbc_jar()'
	@$(STACK) run python -m benchmarks.member_daily --members 1000000 5000000 --repeats 3 $(BENCH_ARGS)
