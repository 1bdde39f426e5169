# Two commands: `make demo` and `make test`. Everything they need is installed from here.
VENV ?= .venv
PY := $(VENV)/bin/python
CONVOLENS := $(VENV)/bin/convolens
PIP := $(PY) -m pip --disable-pip-version-check
DEMO_DB ?= demo.duckdb
DEMO_PORT ?= 8000
# The demo's admin key: public, so it works only while the server runs with this variable
# (docs/service.md); a real deployment lets `convolens serve` make a random one.
DEMO_ADMIN_KEY ?= clk_demo_change-me-in-production-0000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# numba (under resemblyzer's librosa) compiles on first use; a cache makes that once.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: install demo test lint bench eval clean chromium llm
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	# The CPU build of torch first, pinned, so nothing pulls a CUDA build in its place.
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[speech,enrich,service,eval,dev]'
	touch $@

install: $(VENV)/.installed

# The Ray engine's extra (~600 MB): the tests need it, the demo and a plain install do not.
$(VENV)/.installed-ray: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[ray]'
	touch $@

demo: install
	$(CONVOLENS) ingest examples --db $(DEMO_DB)
	$(CONVOLENS) analyze --db $(DEMO_DB)
	$(CONVOLENS) report --db $(DEMO_DB)
	$(CONVOLENS) list --db $(DEMO_DB) --limit 15
	$(CONVOLENS) show call-20260915-0007 --db $(DEMO_DB)
	$(CONVOLENS) show call-20261117-0031 --db $(DEMO_DB)
	$(CONVOLENS) show chat-20261106-0010 --db $(DEMO_DB)
	# Business records and the release/campaign timeline, then the cross-conversation views.
	$(CONVOLENS) import accounts examples/business/accounts.csv --db $(DEMO_DB)
	$(CONVOLENS) import orders examples/business/orders.csv --db $(DEMO_DB)
	$(CONVOLENS) import campaigns examples/business/campaigns.csv --db $(DEMO_DB)
	$(CONVOLENS) annotate import examples/business/annotations.csv --db $(DEMO_DB)
	$(CONVOLENS) clusters --db $(DEMO_DB)
	$(CONVOLENS) trends --by intent --top 8 --db $(DEMO_DB)
	$(CONVOLENS) agents --db $(DEMO_DB)
	$(CONVOLENS) lift --signal churn_risk --db $(DEMO_DB)
	@echo "API: http://127.0.0.1:$(DEMO_PORT)/v1  (OpenAPI docs: http://127.0.0.1:$(DEMO_PORT)/docs)"
	@echo "admin key: $(DEMO_ADMIN_KEY)"
	@echo "dashboard: http://127.0.0.1:$(DEMO_PORT)/dashboard/  (sign in with the admin key)"
	@echo "try: curl -H 'Authorization: Bearer $(DEMO_ADMIN_KEY)' http://127.0.0.1:$(DEMO_PORT)/v1/aggregates"
	CONVOLENS_ADMIN_KEY=$(DEMO_ADMIN_KEY) $(CONVOLENS) serve --db $(DEMO_DB) --port $(DEMO_PORT)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks eval scripts
	$(VENV)/bin/ruff format --check src tests benchmarks eval scripts
	$(VENV)/bin/mypy src

# Debian's Chromium for the dashboard's browser tests (Playwright's own download needs internet).
chromium:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

test: install $(VENV)/.installed-ray lint chromium
	$(VENV)/bin/pytest -q

bench: install
	$(PY) benchmarks/ingest_bench.py
	$(PY) benchmarks/asr_bench.py
	$(PY) benchmarks/enrich_bench.py
	$(PY) benchmarks/api_load.py
	$(PY) benchmarks/stream_latency.py
	$(PY) benchmarks/analytics_bench.py

eval: install
	$(PY) eval/asr_wer.py
	$(PY) eval/diarization_der.py
	$(PY) eval/sentiment.py
	$(PY) eval/intents.py
	$(PY) eval/dialogue_acts.py
	$(PY) eval/resolution.py
	$(PY) eval/summary.py
	$(PY) eval/clustering.py

# Optional: the local LLM for `abstractive = true, llm_provider = "llama_cpp"` summaries.
llm: install
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install -q -c constraints.txt -e '.[llm]'
	$(PY) -m convolens.enrich.summary.local_llm

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB).wal .pytest_cache .ruff_cache
