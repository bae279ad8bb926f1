# Two commands on a fresh machine: `make up` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down test lint format install system browser frontend node benchmark clean-var

install: $(STAMP) system

$(STAMP): pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" -e ./sdk
	touch $(STAMP)

up: $(STAMP) system frontend
	$(BIN)/python -m bml_site.launcher

# Job runs and notebook servers outlive `make up` (adopted by the next start); this ends them.
down: $(STAMP)
	$(BIN)/python -m bml_site.launcher down

# Debian's bubblewrap confines user code (jobs, notebooks, model code); openssl makes the
# embedded store's private CA. See README, "Security model". Installed with apt when missing
# and we may (root); otherwise the launcher says plainly that runs are not confined. The
# DejaVu and Liberation fonts are what the common digits model learns printed digits from
# (apps/warehouse/common.py; without them, from Pillow's own font only).
system:
	@missing=""; for tool in bwrap:bubblewrap openssl:openssl; do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; done; \
	for font in dejavu/DejaVuSans.ttf:fonts-dejavu-core \
	  liberation/LiberationSans-Regular.ttf:fonts-liberation; do \
	  test -f /usr/share/fonts/truetype/$${font%%:*} || missing="$$missing $${font#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's$$missing..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Missing:$$missing (sudo apt-get install$$missing)"; fi; fi

# The console's browser libraries (charts, graph editor): npm installs package-lock.json's exact
# versions and scripts/vendor.js copies their built files into static/vendor/, which git ignores
# the way it ignores .venv (built from the lock file on every machine). Pages load them from
# there, never from a CDN: the console works offline. Redone when the lock file changes or
# static/vendor/ is gone.
FRONTEND_STAMP := static/vendor/.installed

frontend: $(FRONTEND_STAMP)

$(FRONTEND_STAMP): package.json package-lock.json scripts/vendor.js
	@$(MAKE) --no-print-directory node
	npm ci --no-audit --no-fund --loglevel=error
	node scripts/vendor.js
	touch $@

# node and npm: Debian's, installed with apt when missing and we may (root), like `system`.
node:
	@missing=""; for tool in node:nodejs npm:npm; do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's$$missing..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Missing:$$missing (sudo apt-get install$$missing)"; exit 1; fi; fi

# Debian's chromium drives the browser tests (Playwright cannot download a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint system browser frontend
	$(BIN)/pytest

benchmark: $(STAMP)
	$(BIN)/python benchmarks/storage.py --quick

# The GPU host check (issue 17): benchmarks/gpu_check.py, Django-free; the venv's python where
# there is one, else the host's own python3 with its torch (a GPU host gets no venv).
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
.PHONY: gpu-check
gpu-check:
	$(GPU_CHECK_PYTHON) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)
