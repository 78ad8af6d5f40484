# fedlab: the two commands are `make lab` and `make test`. Everything else helps them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The install is redone only when the dependency files change: the stamp's name
# carries their hash, so a second `make lab` starts in seconds.
DEPS_HASH := $(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
PORT ?= 8888
LAB_ARGS ?=
PYTEST_ARGS ?=
# Lessons train tiny models: one thread is several times faster than two fighting
# over a busy 2-core machine, and results stay bit-identical run to run.
export OMP_NUM_THREADS ?= 1

.PHONY: setup lab test lint format bench fuzz lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup $(LAB_SETTINGS)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ServerApp.port=$(PORT) \
		--LabApp.default_url=/lab/tree/lessons/00-index.ipynb $(ROOT_FLAG) $(LAB_ARGS)

# The course reaches no website while it runs: JupyterLab must not ask about Jupyter
# news (a pop-up over the first lesson) nor look for updates online. JupyterLab's
# documented way is to override those settings' defaults in the environment's
# share/jupyter/lab/settings/overrides.json, merged here as binder/postBuild does for
# Binder; a student's own choice in the Settings editor still wins.
$(LAB_SETTINGS): $(STAMP)
	@mkdir -p $(@D)
	$(PY) -c 'import json, pathlib, sys; p = pathlib.Path(sys.argv[1]); \
		s = json.loads(p.read_text()) if p.exists() else {}; \
		s.setdefault("@jupyterlab/apputils-extension:notification", {}).update( \
			fetchNews="false", checkForUpdates=False); \
		p.write_text(json.dumps(s, indent=2) + "\n")' $@

# The browser tests start the same JupyterLab as `make lab`, with its settings.
test: setup lint $(LAB_SETTINGS)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) -m benchmarks

# A large fuzzing campaign over every message kind and the Ray frames (CI runs a small
# one in tests/test_fuzz.py). FUZZ_ROUNDS and FUZZ_SEED choose its size and inputs.
FUZZ_ROUNDS ?= 200000
FUZZ_SEED ?= 0
fuzz: setup
	$(PY) -m tests.support.fuzz $(FUZZ_ROUNDS) $(FUZZ_SEED)

# Re-pin every dependency from a fresh environment built from pyproject.toml.
lock:
	rm -rf /tmp/fedlab-lock && $(PYTHON) -m venv /tmp/fedlab-lock
	/tmp/fedlab-lock/bin/pip install --quiet torch==2.13.0 -e '.[lab,ray,dev]'
	{ echo "# The exact versions 'make' installs (pip freeze of a working environment)."; \
	  echo "# Regenerate with 'make lock' after changing pyproject.toml."; \
	  /tmp/fedlab-lock/bin/pip freeze --exclude-editable | sed 's/+cpu$$//' | grep -v '^pip=='; \
	  echo "setuptools==$$(/tmp/fedlab-lock/bin/python -c 'import setuptools; print(setuptools.__version__)')"; \
	} > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
