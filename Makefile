# photocheck: `make demo` builds a small demo index and serves it; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_INDEX ?= demo/index
PORT ?= 8000

.PHONY: install demo demo-index test lint bench soak clean

ONDEVICE := build/ondevice/manifest.json

install: $(STAMP) $(ONDEVICE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The on-device check's files: the npm packages pinned in package-lock.json (integrity-checked by npm ci,
# no install scripts run), converted and written to build/ondevice. Without npm the service still runs,
# and its page says that checking on the device is not available.
$(ONDEVICE): $(STAMP) package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && $(BIN)/photocheck ondevice build; \
	else echo "npm is not installed: the on-device check will be unavailable (apt-get install nodejs npm)" >&2; fi

demo-index: install
	$(BIN)/python -m indexer.demo --index $(DEMO_INDEX) --port $(PORT)

demo: install
	$(BIN)/python -m indexer.demo --index $(DEMO_INDEX) --port $(PORT) --serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/dlib_speed.py
	$(BIN)/python bench/detection.py
	$(BIN)/python bench/indexing.py
	$(BIN)/python bench/service_latency.py
	$(BIN)/python bench/bulk_throughput.py
	$(BIN)/python bench/index_types.py
	$(BIN)/python bench/ray_indexing.py

# Running it for real (half an hour): worker models under slow clients, 10 minutes of load, long fuzzing.
soak: install
	$(BIN)/python bench/slow_clients.py
	$(BIN)/python bench/sustained_load.py
	$(BIN)/python bench/fuzz_uploads.py

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache build dist *.egg-info node_modules
