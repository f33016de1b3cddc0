# GridMap — `make run` serves the Zhengzhou demo at http://127.0.0.1:8000; `make test` runs every test.
# Each target does its own set-up and is quick the second time.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  ?= python3
HOST    ?= 127.0.0.1
PORT    ?= 8000
# Without DATABASE_URL the private cluster under .gridmap/ is used (and started); gis/settings.py
# knows its address.
PRIVATE_DB := $(if $(DATABASE_URL),,yes)

.PHONY: help setup run test bench stop db clean

help:
	@echo "make run    the platform with the Zhengzhou demo at http://$(HOST):$(PORT)"
	@echo "make test   the whole test suite"
	@echo "make bench  every benchmark, with figures and ratios against its peer"
	@echo "make stop   stop the private PostgreSQL cluster"

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the pages' message catalogues, compiled for Flask-Babel
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard webmap/translations/*/LC_MESSAGES/messages.po))
%.mo: %.po $(BIN)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

setup: $(BIN)/.installed node_modules/.installed $(CATALOGUES)
	@scripts/system-deps.sh $(SYSTEM_DEPS_FLAGS)
	@# the key that signs session cookies: made once, kept out of the repository (GRIDMAP_SECRET_KEY overrides it)
	@$(BIN)/python -c 'from gis.settings import Settings, ensure_secret_key; ensure_secret_key(Settings.from_env().state_dir)'

db: setup
ifeq ($(PRIVATE_DB),yes)
	@scripts/devdb.sh start
endif
	@$(BIN)/gridmap db migrate
	@# the first city-wide admin (password: GRIDMAP_ADMIN_PASSWORD, or a random one printed once)
	@$(BIN)/gridmap user init-admin

run: db
	@$(BIN)/gridmap demo load
	@$(BIN)/gridmap demo history
	@echo "GridMap: http://$(HOST):$(PORT)  (Ctrl-C to stop the web app; 'make stop' stops the database)"
	@# the tick escalates overdue cases every minute, for as long as the web app runs;
	@# 16 threads a worker: each open live feed (/api/v1/live, server-sent events) holds one
	$(BIN)/gridmap tick --every 60 & trap "kill $$! 2>/dev/null" EXIT; \
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 2 --threads 16 --access-logfile - 'webmap:create_app()'

test: SYSTEM_DEPS_FLAGS := --browser
test: setup
ifeq ($(PRIVATE_DB),yes)
	@scripts/devdb.sh start
endif
	$(BIN)/pytest $(PYTEST_ARGS)

bench: SYSTEM_DEPS_FLAGS := --browser
bench: setup
ifeq ($(PRIVATE_DB),yes)
	@scripts/devdb.sh start
endif
	$(BIN)/python -m bench.run

stop:
	@scripts/devdb.sh stop

clean: stop
	rm -rf .gridmap node_modules $(VENV)
