# `make test` and `make demo` each create .venv; it is reused while pyproject.toml is unchanged.
PY ?= python3.11
VENV := .venv
STAMP := $(VENV)/.stamp-$(shell sha1sum pyproject.toml | cut -c1-12)
BIN := $(VENV)/bin

.PHONY: venv test lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,redis,mlx]'
	rm -f $(VENV)/.stamp-*
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/python -m prefect_ft.demo

bench: venv
	$(BIN)/python benchmarks/breaker_overhead.py
	$(BIN)/python benchmarks/jitter.py

clean:
	rm -rf $(VENV)
