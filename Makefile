# gluerelay: every task goes through this file. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
BENCH_STAMP := $(VENV)/.installed-bench
CODE := gluerelay glue bench tests functions examples
# aws-sam-cli and checkov each live in their own venv: their pins clash with the project's and each other's.
TOOLS := .venv-tools
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
export SAM_CLI_TELEMETRY := 0

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; gluerelay needs Python 3.11 (as Lambda python3.11 and Glue 5.0)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $@

$(TOOLS)/%/.installed: tools/%-requirements.txt
	rm -rf $(TOOLS)/$* && $(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install --quiet --upgrade pip==25.3
	$(TOOLS)/$*/bin/python -m pip install --quiet --no-deps -r $<
	touch $@

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## Create .venv with the pinned dependencies

.PHONY: run
run: $(STAMP) ## A pipeline end to end in the local cloud (PIPELINE=customers|orders ROWS=10000 SOURCE=s3|jdbc FILES=1)
	$(BIN)/gluerelay local run --pipeline $${PIPELINE:-customers} --rows $${ROWS:-10000} --source $${SOURCE:-s3} --files $${FILES:-1}

.PHONY: lint
lint: $(STAMP) ## ruff, mypy, and the pipelines' compiled files current
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/gluerelay pipelines validate

.PHONY: pipelines
pipelines: $(STAMP) ## Compile pipelines/*.yaml (state machines, the functions' catalog, schema, README reference)
	$(BIN)/gluerelay pipelines compile

.PHONY: format
format: $(STAMP) ## Format and autofix with ruff
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

.PHONY: check-template
check-template: $(STAMP) $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## cfn-lint, sam validate --lint, checkov, sam build
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml --region us-east-1
	$(CHECKOV) --file template.yaml --config-file .checkov.yaml
	mkdir -p .aws-sam && $(SAM) build --template template.yaml --build-dir .aws-sam/build --region us-east-1 >.aws-sam/build.log 2>&1 \
		|| { cat .aws-sam/build.log; exit 1; }
	@echo "sam build: $$(ls .aws-sam/build | grep -vc template.yaml) artifacts in .aws-sam/build"

.PHONY: test
test: lint check-template ## Every check and test (lint, types, template, unit, integration, e2e)
	$(BIN)/pytest

.PHONY: test-spark
# The SQLite JDBC driver for PySpark's JDBC reads (Debian: apt-get install libxerial-sqlite-jdbc-java).
SQLITE_JDBC_JAR ?= $(wildcard /usr/share/java/sqlite-jdbc.jar)

test-spark: $(SPARK_STAMP) ## The engine tests again on real PySpark 3.5 (needs Java 17)
	GLUERELAY_SPARK_JARS=$${GLUERELAY_SPARK_JARS:-$(SQLITE_JDBC_JAR)} ETL_ENGINE=pyspark SPARK_LOCAL_IP=127.0.0.1 \
		$(BIN)/pytest -m spark

.PHONY: bad-inputs
bad-inputs: $(STAMP) ## Every bad landed file on the local engine (and PySpark, with Java) → table in RELIABILITY.md
	rm -rf .gluerelay/bad-inputs
	$(BIN)/pytest -q tests/integration/test_bad_files.py
	@if command -v java >/dev/null; then \
		$(MAKE) --no-print-directory $(SPARK_STAMP) && \
		ETL_ENGINE=pyspark SPARK_LOCAL_IP=127.0.0.1 $(BIN)/pytest -q tests/integration/test_bad_files.py; \
	else echo "no Java 17: the PySpark column stays 'not run'"; fi
	$(BIN)/python -m tests.integration.bad_inputs

.PHONY: chaos
chaos: $(STAMP) ## Fault-tolerance scenarios in the local cloud → table in RELIABILITY.md
	rm -f .gluerelay/chaos/results.json
	$(BIN)/pytest -m chaos -q || true
	$(BIN)/python -m tests.e2e.chaos

.PHONY: mutants
mutants: $(STAMP) ## Break each reliability guarantee in a scratch copy; its scenario must fail (MUTANTS="04 05")
	$(BIN)/python -m tests.mutants $${MUTANTS:-}

.PHONY: bench
# With Java on the machine the data plane also times job 2 on PySpark (the spark extra is installed for it).
bench: $(BENCH_STAMP) $(if $(shell command -v java),$(SPARK_STAMP)) ## Benchmarks → BENCHMARKS.md (about 40 min)
	$(BIN)/python -m bench

.PHONY: lock
lock: ## Re-freeze constraints.txt from a fresh resolve of pyproject.toml
	rm -rf /tmp/gluerelay-lock && $(PYTHON) -m venv /tmp/gluerelay-lock
	/tmp/gluerelay-lock/bin/pip install --quiet '.[dev,spark,bench]'
	/tmp/gluerelay-lock/bin/pip freeze --exclude gluerelay | sort > constraints.txt

.PHONY: lock-tools
lock-tools: ## Re-freeze tools/*-requirements.txt (aws-sam-cli, checkov)
	for t in sam:aws-sam-cli checkov:checkov; do n=$${t%%:*}; rm -rf /tmp/gluerelay-lock-$$n && \
		$(PYTHON) -m venv /tmp/gluerelay-lock-$$n && /tmp/gluerelay-lock-$$n/bin/pip install --quiet \
		"$${t#*:}==$$(sed -n "s/^$${t#*:}==//p" tools/$$n-requirements.txt)" && \
		{ sed -n '/^#/p' tools/$$n-requirements.txt; /tmp/gluerelay-lock-$$n/bin/pip freeze | sort; } \
		> tools/$$n-requirements.txt.new && mv tools/$$n-requirements.txt.new tools/$$n-requirements.txt; done

.PHONY: clean
clean: ## Remove the virtualenv, caches and local outputs
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .gluerelay .aws-sam
