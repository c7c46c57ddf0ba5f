# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-faults test-browser lint bench openapi demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/csperf serve

# A sample shop (two teams, three months, every consequence), seeded through the API, then
# served: open the printed URL and sign in with a printed key. Running it again adds nothing.
demo: $(STAMP)
	$(BIN)/csperf demo --serve

lint: $(STAMP)
	$(BIN)/ruff check service tests bench migrations
	$(BIN)/mypy --strict service

test: lint
	$(BIN)/pytest -q -m "not faults"

# The browser tests are part of `make test`; they skip (saying why) without Debian's Chromium
# (/usr/bin/chromium). This runs only them.
test-browser: $(STAMP)
	$(BIN)/pytest -q -rs tests/browser

test-faults: $(STAMP)
	$(BIN)/pytest -q -m faults tests/faults

bench: $(STAMP)
	$(BIN)/python -m bench

openapi: $(STAMP)
	$(BIN)/csperf openapi --output openapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
