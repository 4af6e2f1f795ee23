# Development commands. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CPU torch for development and CI: pinned here (pyproject keeps a permissive range for users),
# so pip never pulls a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0

.PHONY: venv test demo lint bench clean sample-data

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[test,nnunet]" "$(TORCH_PIN)"
	touch $@

venv: $(VENV)/.installed

sample-data: venv
	$(VENV)/bin/spectrum-attack sample-data --print-path

# Tests that need the sample data skip (with the reason) when it cannot be fetched.
test: venv
	$(VENV)/bin/spectrum-attack sample-data --print-path || echo "sample data unavailable: tests that need it will skip"
	$(PY) -m pytest -q -ra Testing

demo: venv sample-data
	$(VENV)/bin/spectrum-attack demo --output demo-output --overwrite

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) bench/attack_cost.py
	$(PY) bench/precision_cost.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
