# Two commands a user needs: `make demo` and `make test`. Both set everything up on a fresh
# machine (a .venv made with pip, Debian's chromium for static export and browser tests) and
# are safe to run again.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --progress-bar off -q -c constraints.txt
OUT    ?= demo_out
# pytest workers: one per core; each worker runs torch single-threaded.
WORKERS ?= 2

.PHONY: demo test setup setup-dev browser lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off -q --upgrade pip

$(VENV)/.setup: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.setup-dev: pyproject.toml constraints.txt $(VENV)/.setup
	$(PIP) -e '.[dev]'
	touch $@

setup: $(VENV)/.setup browser
setup-dev: $(VENV)/.setup-dev browser

browser:
	@bash scripts/ensure-chromium.sh

demo: setup
	$(VENV)/bin/inspect-kit demo --out $(OUT)

test: setup-dev
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(WORKERS) --dist loadgroup -q -p no:cacheprovider

lint: setup-dev
	$(VENV)/bin/ruff check inspect_kit tests benchmarks
	$(VENV)/bin/ruff format --check inspect_kit tests benchmarks
	$(VENV)/bin/mypy  # files and settings: [tool.mypy] in pyproject.toml

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
