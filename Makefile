# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   creates .venv, installs, and runs the migration end to end on the embedded default
#   make test   creates .venv if needed, installs, lints and passes the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The venv's bin first: dbt and dagster are found there without activating it.
export PATH := $(abspath $(BIN)):$(PATH)
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-fast test-e2e lint ui screenshots bench bench-transform bench-snowflake bench-publish bench-backfill bench-delta clean

$(INSTALLED): pyproject.toml constraints.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt pins every transitive version, so every machine gets the same environment.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(INSTALLED)

# dbt's manifest, which the Dagster definitions read: parsed again whenever a file of dbt_project changes.
DBT_MANIFEST := dbt_project/target/manifest.json
$(DBT_MANIFEST): $(INSTALLED) $(shell find dbt_project -type f -not -path '*/target*' -not -path '*/logs/*' 2>/dev/null)
	$(BIN)/python -m zephyr_qtest.lib.dbt --force

install: $(INSTALLED) $(DBT_MANIFEST)

demo: install
	$(BIN)/zephyr-qtest demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers: most tests wait on a sandbox, dbt, PostgreSQL or a Dagster process rather than compute,
# and each worker has its own embedded server (tests/conftest.py says how tests are grouped).
PYTEST_WORKERS ?= 2
# In the order of collection (end-to-end first): the longest units start first.
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --no-loadscope-reorder

test: lint
	$(BIN)/pytest $(PYTEST_PARALLEL)

# The same suite without the slow end-to-end tests, and those alone.
test-fast: install
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not e2e"

test-e2e: install
	$(BIN)/pytest $(PYTEST_PARALLEL) -m e2e

ui: install
	$(BIN)/zephyr-qtest ui

# The runbook's screenshots (docs/runbook/*.png), taken again by its browser test from the real UI after a
# tiny migration. Needs Debian's browser: apt-get install -y chromium chromium-driver.
screenshots: install
	RUNBOOK_SCREENSHOTS=$(CURDIR)/docs/runbook $(BIN)/pytest -m e2e tests/e2e/test_runbook_screenshots.py

bench: install
	$(BIN)/python bench/extract_benchmark.py

bench-transform: install
	$(BIN)/python bench/transform_benchmark.py

bench-snowflake: install
	$(BIN)/python bench/snowflake_benchmark.py

bench-publish: install
	$(BIN)/python bench/publish_benchmark.py

# A tenant of 4 projects backfilled through the daemon (docs/dagster-tenant.yaml), at two project sizes.
bench-backfill: install
	$(BIN)/python bench/backfill_benchmark.py --scales 1,2

bench-delta: install
	$(BIN)/python bench/delta_benchmark.py

clean:
	rm -rf .zephyr_qtest .pytest_cache .ruff_cache dbt_project/target dbt_project/logs
