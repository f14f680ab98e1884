# The two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DBT_PROFILES_DIR := $(CURDIR)
# The toolbelt runs from the tree (`python -m tally`), no install step to go stale: each venv gets a .pth file
# naming scripts/, so its python finds it without PYTHONPATH (activated or not).
export PYTHONPATH := $(CURDIR)/scripts
TALLY_PTH = "$(1)/bin/python" -c "import sys, sysconfig; open(sysconfig.get_paths()['purelib'] + '/tally-scripts.pth', 'w').write(sys.argv[1] + '\n')" '$(CURDIR)/scripts'

SPARK_VENV ?= .venv-spark

.PHONY: demo test lint pytest venv clean spark-venv spark-parity

venv: $(VENV)/.installed $(VENV)/.tally-pth

# The lock pins the whole tree; the project itself installs without touching it.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

$(VENV)/.tally-pth: $(VENV)/.installed
	$(call TALLY_PTH,$(VENV))
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

# Spark: an optional, separate venv (pyspark is large), the default one stays small. Needs Java 17 (`java`).
spark-venv: $(SPARK_VENV)/.installed $(SPARK_VENV)/.tally-pth

$(SPARK_VENV)/.installed: requirements.lock requirements-spark.lock pyproject.toml
	$(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-spark.lock
	touch $@

$(SPARK_VENV)/.tally-pth: $(SPARK_VENV)/.installed
	$(call TALLY_PTH,$(SPARK_VENV))
	touch $@

# INV-26: a tiny world built on DuckDB and on Spark (every model and data test on both), public marts compared,
# as of a day inside the world (later deliveries unknown, lines in suspense) and as of its last day.
spark-parity: spark-venv
	@command -v java >/dev/null || { echo "spark-parity needs Java 17: apt-get install -y openjdk-17-jre-headless"; exit 1; }
	$(SPARK_VENV)/bin/python -m tally parity --work-dir data/parity --as-of 2024-03-05 --as-of latest

clean:
	rm -rf data target logs
