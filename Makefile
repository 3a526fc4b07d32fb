# Set-up is two commands on a fresh clone: `make demo` and `make test`. Each creates
# .venv when it is missing and installs the package into it.
VENV    ?= .venv
PYTHON  ?= python3
# the torch build to install first (on this project's machines these come from local disk)
TORCH   ?= torch==2.14.1 torchvision==0.29.1
PY      := $(VENV)/bin/python
ABLATE  := $(VENV)/bin/ablate
STAMP   := $(VENV)/.ablate-installed

.PHONY: install demo test bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
