# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
RUN    ?= runs/demo
PROFILE ?= quick
# Real ACDC data for the tests that use it (skipped, with a message, when absent).
CARDIGAN_ACDC_DIR ?= $(wildcard $(abspath ..)/shared/data/ACDC/training)
export CARDIGAN_ACDC_DIR
# Real CAMUS (official, or a derived copy such as CAMUS_224) for the echo tests that use it.
CARDIGAN_CAMUS_DIR ?= $(wildcard $(abspath ..)/shared/data/CAMUS_224)
export CARDIGAN_CAMUS_DIR

.PHONY: venv demo test lab lab-copies clean clean-notebooks

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c .ci/constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c .ci/constraints.txt -e ".[dev]"
	@# nnU-Net v2, to run its own dataset check on the kit's export (tests/test_export_nnunet.py),
	@# without its dependencies: in full they pull timm -> torchvision 0.28.0, a CUDA build on PyPI
	@# whose import fails on the CPU torch ("operator torchvision::nms does not exist"), plus
	@# huggingface_hub and safetensors: 82 MB of downloads, +315 MB installed. timm serves only
	@# nnU-Net's Primus networks; what the dataset check, planning and trainer import comes with [dev].
	$(PY) -m pip install --quiet --no-deps -c .ci/constraints.txt nnunetv2 dynamic-network-architectures
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cardigan kit)" >/dev/null
	touch $@

# the study from data to verdict; the exercises run in `make lab` and in `make test`
demo: venv
	$(VENV)/bin/cardigan run --profile $(PROFILE) --dataset phantom-mri --run-dir $(RUN) --no-exercises

test: venv
	$(PY) -m pytest -q
	@# nbval: the notebooks, as committed, run top to bottom (smoke profile, throw-away run dir);
	@# cells marked NBVAL_CHECK_OUTPUT must reproduce their stored output.
	CARDIGAN_PROFILE=smoke CARDIGAN_RUN_DIR=$$(mktemp -d) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax notebooks/

clean-notebooks: venv
	$(PY) -c "from cardigan_utils.notebook import clean_notebook, sequence; [print(p.name, 'cleaned' if clean_notebook(p) else 'clean') for p in sequence()]"

# JupyterLab on the teacher notebooks (or NOTEBOOKS=lab_copies for the student copies); the
# notebooks' default profile is `lab` here (CARDIGAN_PROFILE=quick make lab for the demo's sizes)
NOTEBOOKS ?= notebooks
lab: venv
	@test -d $(NOTEBOOKS) || { echo "no $(NOTEBOOKS)/ folder: for the student copies run 'make lab-copies' first"; exit 1; }
	@# --allow-root only where the lab runs as root (containers); Jupyter refuses root otherwise
	CARDIGAN_PROFILE=$${CARDIGAN_PROFILE:-lab} $(VENV)/bin/jupyter lab $(NOTEBOOKS)/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# student copies of the notebooks (solutions stubbed by nbgrader, outputs cleared) and lab sheets
lab-copies: venv
	$(VENV)/bin/cardigan lab build --out lab_copies

clean:
	rm -rf $(VENV) runs .pytest_cache
