# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean soak

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ethbtc.demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

soak: $(STAMP)
	ETHBTC_SOAK=1 $(PY) -m pytest -q -m soak -s

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) data/sample out .pytest_cache .ruff_cache
