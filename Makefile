# civiq — two commands on a fresh machine:
#   make demo   creates .venv, installs civiq, runs `civiq demo` (embedded broker, gateway, simulated centers)
#   make test   installs what the tests need (apt packages where missing, a .venv) and runs the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=

.PHONY: demo test lint bench soak docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/civiq demo $(DEMO_ARGS)

test: $(VENV)/.test-installed
	bash scripts/install-test-deps.sh
	$(VENV)/bin/ruff check civiq tests bench
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check civiq tests bench

bench: $(VENV)/.test-installed
	bash scripts/install-test-deps.sh
	$(PY) -m bench.run

soak: $(VENV)/.test-installed
	bash scripts/install-test-deps.sh
	CIVIQ_SOAK=1 $(PY) -m pytest -q -p no:cacheprovider -m slow tests

docs: $(VENV)/.installed
	$(PY) -m civiq.edge.configdoc > docs/config.md

clean:
	rm -rf $(VENV) build *.egg-info
