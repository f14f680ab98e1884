# The two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DBT_PROFILES_DIR := $(CURDIR)
# The toolbelt runs from the tree (`python -m tally`), no install step to go stale.
export PYTHONPATH := $(CURDIR)/scripts

.PHONY: demo test lint pytest venv clean

venv: $(VENV)/.installed

# The lock pins the whole tree; the project itself installs without touching it.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

demo: venv
	$(BIN)/python -m tally demo

lint: venv
	$(BIN)/ruff check scripts tests
	@mkdir -p data/warehouse  # sqlfluff's dbt templater opens the DuckDB profile
	$(BIN)/sqlfluff lint models macros tests/dbt --processes 2

pytest: venv
	$(BIN)/pytest

test: lint pytest

clean:
	rm -rf data target logs
