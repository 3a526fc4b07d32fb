# Set-up is two commands on a fresh clone: `make demo` and `make test`. Each creates
# .venv when it is missing and installs the package into it.
VENV    ?= .venv
PYTHON  ?= python3
# the torch build to install first (on this project's machines these come from local disk)
TORCH   ?= torch==2.14.1 torchvision==0.29.1
PY      := $(VENV)/bin/python
ABLATE  := $(VENV)/bin/ablate
STAMP   := $(VENV)/.ablate-installed

.PHONY: install demo test bench bench-gpu results results-budget screenshots clean

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

# RESULTS.md: the rules study and the reduced depth x schedule design on Fashion-MNIST at
# one CPU budget, 4 epochs x 9,000 training images, chosen from the budget curve (RESULTS.md
# says why); the study files unchanged, the budget is these overrides. Several hours on a
# 2-core CPU, probes and CKA included (README, "Which budget").
RESULTS_BUDGET := --set width=0.5 --set train_subset=9000 --set epochs=4
RESULTS_JOBS ?= 2
results: $(STAMP)
	$(ABLATE) run studies/rules.yaml $(RESULTS_BUDGET) --jobs $(RESULTS_JOBS) --quiet
	$(ABLATE) run studies/depth_schedule.yaml $(RESULTS_BUDGET) --jobs $(RESULTS_JOBS) --quiet
	rm -f RESULTS.md.new
	$(ABLATE) report studies/rules.yaml $(RESULTS_BUDGET) --out docs/results/rules --results RESULTS.md.new
	$(ABLATE) report studies/depth_schedule.yaml $(RESULTS_BUDGET) --out docs/results/depth_schedule --results RESULTS.md.new
	if [ -d studies/runs/budget ]; then $(ABLATE) report studies/budget.yaml --out docs/results/budget --results RESULTS.md.new; fi
	mv RESULTS.md.new RESULTS.md

# the budget curve RESULTS.md's budget was chosen from (about 2.5 hours); `make results` adds its section
results-budget: $(STAMP)
	$(ABLATE) run studies/budget.yaml --jobs $(RESULTS_JOBS) --quiet
	$(MAKE) results

# docs/screenshots/: the MLflow UI and optuna-dashboard on a tiny quickstart, in headless
# Chromium (Debian's package, installed when missing)
screenshots: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
