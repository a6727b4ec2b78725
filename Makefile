# Two commands for a fresh machine: `make demo` (the member pipeline end to end) and `make test`.
# Everything else here is a building block of those two.
SHELL := /bin/bash
STACK := dev/stack.sh
PYTEST_ARGS ?=

.PHONY: demo test install up down status unit lock bench

demo: up ## install, start the local stack, run the member pipeline, print the reconciliation report
	@$(STACK) run python -m dev.demo

test: up ## install, start the local stack, run the whole suite (unit, integration, end-to-end)
	@$(STACK) run python -m pytest $(PYTEST_ARGS)

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

lock: ## recompile requirements.lock from requirements.in
	@.venv/bin/uv pip compile -q requirements.in --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --generate-hashes -o requirements.lock

bench: up ## extract benchmark (see benchmarks/README.md)
	@$(STACK) run python -m benchmarks.extract_bench
