# civiq — two commands on a fresh machine:
#   make demo   creates .venv, installs civiq[demo] (both sides + the embedded broker), runs `civiq demo`
#   make test   installs what the tests need (apt packages where missing, a .venv, civiq[test]) and runs the
#               whole suite (what CI runs: .ci/run)
#   make check  the fast tier while you work: ruff, unit tests and doctests (no broker, browser or processes)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=

.PHONY: demo test check lint bench soak docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[demo]'
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

check: $(VENV)/.test-installed
	$(VENV)/bin/ruff check civiq tests bench
	$(PY) -m pytest -q -p no:cacheprovider -m "not integration"

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
