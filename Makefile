# Two commands: `make demo` and `make test`. Everything they need is installed from here.
VENV ?= .venv
PY := $(VENV)/bin/python
CONVOLENS := $(VENV)/bin/convolens
PIP := $(PY) -m pip --disable-pip-version-check
DEMO_DB ?= demo.duckdb
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(CONVOLENS) ingest examples --db $(DEMO_DB)
	$(CONVOLENS) analyze --db $(DEMO_DB)
	$(CONVOLENS) report --db $(DEMO_DB)
	$(CONVOLENS) list --db $(DEMO_DB) --limit 15
	$(CONVOLENS) show call-20260915-0007 --db $(DEMO_DB)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

test: install lint
	$(VENV)/bin/pytest -q

bench: install
	$(PY) benchmarks/ingest_bench.py

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB).wal .pytest_cache .ruff_cache
