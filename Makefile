# ArbX: two commands on a fresh machine — `make demo` and `make test`.
# Each target creates the virtual environment on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.arbx-installed

.PHONY: install demo test test-fast lint format ui up down browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ArbX needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing ArbX into $(VENV)…"
	@# uv resolves and installs in seconds; plain pip is the fallback (a minute or two).
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv \
		&& $(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]" \
		|| $(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@# Bytecode now, once: where PYTHONDONTWRITEBYTECODE is set (as on these machines) every
	@# process would otherwise compile sklearn, scipy and dagster again (4 s per start).
	@$(BIN)/python -m compileall -q -j 0 arbx_dagster \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
		>/dev/null 2>&1 || true
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/arbx demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=20

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not services"

lint: $(STAMP)
	$(BIN)/ruff check arbx_dagster tests
	$(BIN)/ruff format --check arbx_dagster tests

format: $(STAMP)
	$(BIN)/ruff check --fix arbx_dagster tests
	$(BIN)/ruff format arbx_dagster tests

ui: $(STAMP)
	$(BIN)/arbx ui

# A real deployment on this machine: webserver + daemon (+ API) on PostgreSQL.
up: $(STAMP)
	$(BIN)/arbx up

down: $(STAMP)
	$(BIN)/arbx down

# Debian's Chromium for the dashboard's browser test (Playwright drives /usr/bin/chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

clean:
	rm -rf .arbx .pytest_cache .ruff_cache
