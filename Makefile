# mlscaffold: `make demo` (set up, scaffold a project, train it, show it) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
# bytecode is a cache of .venv and of this checkout (both ours): where the machine turns writing it
# off, every process would compile every module it imports again (the test suite: +2.5 minutes)
unexport PYTHONDONTWRITEBYTECODE
.PHONY: help install demo test test-fast lint examples docs version bench bench-serving bench-image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# uv installs what pip would (the same resolution, checked), in seconds rather than a minute. No
# bytecode is compiled ahead: Python writes it the first time a module is imported, which is
# cheaper than compiling all 15,000 modules of the environment (most are never imported).
# uv reads its own settings, not pip's (uv's docs, "Compatibility with pip"): the index and CA
# bundle pip would use are handed on, from PIP_INDEX_URL and PIP_CERT or else pip.conf (its
# [install] section before [global], as pip reads them), so an organisation's mirror serves both
PIP_SETTING = $$($(PY) -m pip config get install.$(1) 2>/dev/null || \
	$(PY) -m pip config get global.$(1) 2>/dev/null)
$(STAMP): pyproject.toml $(wildcard scaffolder/requirements/*.txt)
	@echo "== making $(VENV) with mlscaffold and its test tools"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q 'uv~=0.13.9'
	@index="$${PIP_INDEX_URL:-$(call PIP_SETTING,index-url)}"; \
	cert="$${PIP_CERT:-$(call PIP_SETTING,cert)}"; \
	set -x; env $${index:+UV_DEFAULT_INDEX="$$index"} $${cert:+SSL_CERT_FILE="$$cert"} \
	$(VENV)/bin/uv pip install --python $(PY) --upgrade pip -e '.[test]'
	touch $@

install: $(STAMP) ## .venv with mlscaffold (editable) and its test tools

demo: $(STAMP) ## scaffold a project into a temporary folder, test, train and check it
	@dir=$$(mktemp -d)/churn-model; set -e; \
	$(VENV)/bin/mlscaffold new $$dir --no-input --task binary-classification --serving sagemaker --ci github; \
	echo; echo "== the project's own tests"; \
	$(MAKE) -s -C $$dir test PY=$(abspath $(PY)); \
	echo; echo "== a 15-second model search"; \
	$(MAKE) -s -C $$dir train TIME=15 PY=$(abspath $(PY)); \
	$(MAKE) -s -C $$dir list PY=$(abspath $(PY)); \
	echo; echo "== its Pulumi stacks against the security and cost policies (offline)"; \
	$(VENV)/bin/mlscaffold check $$dir; \
	echo; echo "The project is in $$dir; to work on it (its own venv, with this checkout's mlscaffold):"; \
	echo "  cd $$dir && make install MLSCAFFOLD_SOURCE='$(CURDIR)' && make help"

# one pytest worker per core, the slow tier handed out first (tests/conftest.py) and a worker
# that runs out taking half of another's queue (worksteal); the 25 slowest tests are listed at
# the end, to see where the suite's time goes
test: $(STAMP) ## the whole test suite, slow tiers included, on every core
	$(PY) -m ruff check .
	$(PY) -m pytest -n auto --dist worksteal --durations=25

test-fast: $(STAMP) ## the suite without the slow tier (rendered projects' own tests, pip install)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP) ## ruff
	$(PY) -m ruff check .

examples: $(STAMP) ## regenerate examples/ from what `mlscaffold new` makes
	$(PY) tests/tools/regenerate.py examples

docs: $(STAMP) ## regenerate docs/cli.md from the CLI's help
	$(PY) tests/tools/regenerate.py docs

version: $(STAMP) ## write mlscaffold.__version__ into the files that hold it literally (copier.yml, packs)
	$(PY) tests/tools/regenerate.py version

bench: $(STAMP) ## benchmarks: start-up, `new` against copier, preview, check, train, thin projects
	$(PY) tests/bench/bench_new.py
	$(PY) tests/bench/bench_preview.py
	$(PY) tests/bench/bench_check.py
	$(PY) tests/bench/bench_train.py
	$(PY) tests/bench/bench_project.py
	$(PY) tests/bench/bench_update.py

bench-serving: $(STAMP) ## serving throughput and latency against MLServer (makes its own venv)
	$(PY) tests/bench/bench_serving.py

bench-image: $(STAMP) ## installed size by use: the whole tool, the runtime, the serving image (podman)
	$(PY) tests/bench/bench_image.py --image
