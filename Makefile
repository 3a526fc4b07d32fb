# Set-up is two commands on a fresh clone: `make demo` and `make test`. Each creates
# .venv when it is missing and installs the package into it.
VENV    ?= .venv
PYTHON  ?= python3
# the torch build to install first (on this project's machines these come from local disk)
TORCH   ?= torch==2.14.1 torchvision==0.29.1
PY      := $(VENV)/bin/python
ABLATE  := $(VENV)/bin/ablate
STAMP   := $(VENV)/.ablate-installed

.PHONY: install demo test bench bench-gpu results screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq $(TORCH)
	$(PY) -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(ABLATE) describe --model resnet20 --rule auglocal --aux-depth 3 --in-channels 1 --image-size 8 --width 0.5
	$(ABLATE) run studies/quickstart.yaml
	$(ABLATE) report studies/quickstart.yaml

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks

# every GPU target in one command, on a GPU machine with torch, torchvision, numpy, pyyaml
# and click but without optuna, mlflow or pydantic (and no network): no install, the
# checkout on the path; one timed epoch per configuration to stay under 8 minutes
bench-gpu:
	PYTHONPATH=$(CURDIR) $(PYTHON) -m benchmarks --device cuda --only memory --only epoch --only overlap --epoch-repeats 1

# RESULTS.md: the rules and depth-decay studies on Fashion-MNIST at the reduced CPU budget
# stated there (the study files unchanged; the budget is these overrides)
RULES_BUDGET := --set width=0.5 --set train_subset=8000 --set val_size=2000 --set epochs=5
DEPTH_BUDGET := --set 'seeds=[0]' --set width=0.5 --set train_subset=4000 --set val_size=2000 --set epochs=4
results: $(STAMP)
	$(ABLATE) run studies/rules.yaml $(RULES_BUDGET)
	$(ABLATE) run studies/depth_decay.yaml $(DEPTH_BUDGET)
	$(ABLATE) report studies/rules.yaml $(RULES_BUDGET) --out docs/results/rules --results RESULTS.md
	$(ABLATE) report studies/depth_decay.yaml $(DEPTH_BUDGET) --out docs/results/depth_decay --results RESULTS.md

# docs/screenshots/: the MLflow UI and optuna-dashboard on a tiny quickstart, in headless
# Chromium (Debian's package, installed when missing)
screenshots: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
