# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
RUN    ?= runs/demo
PROFILE ?= quick
# Real ACDC data for the tests that use it (skipped, with a message, when absent).
CARDIGAN_ACDC_DIR ?= $(wildcard $(abspath ..)/shared/data/ACDC/training)
export CARDIGAN_ACDC_DIR

.PHONY: venv demo test lab clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c .ci/constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c .ci/constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cardigan kit)" >/dev/null
	touch $@

demo: venv
	$(VENV)/bin/cardigan run --profile $(PROFILE) --dataset phantom-mri --run-dir $(RUN)

test: venv
	$(PY) -m pytest -q

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
