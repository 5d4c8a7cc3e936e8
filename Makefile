# The README's commands. `make run` and `make test` create whatever is missing:
# both Python environments and the trained NLU model.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
NLU_VENV := .venv-nlu
COOPBOT := $(VENV)/bin/coopbot

.PHONY: run test setup env model browser fonts lint bench-nlu bench-chat bench-reminders bench-broadcast bench-dashboard bench-retrain bench-handout bench-faq clean-env

run: model fonts
	$(COOPBOT) run

# Lint first: the import contracts are part of the tests.
test: lint model browser fonts
	$(VENV)/bin/python -m pytest

# Debian's Chromium and ChromeDriver for the web chat's browser test.
browser:
	scripts/ensure-chromium

setup: env model

env: $(VENV)/.installed $(NLU_VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: the application needs python3 >= 3.11; found " + sys.version.split()[0])'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(NLU_VENV)/.installed: nlu/requirements.txt
	@PY310=$$(scripts/find-python310) || exit 1; \
	test -x $(NLU_VENV)/bin/python || $$PY310 -m venv $(NLU_VENV); \
	$(NLU_VENV)/bin/pip install --quiet --upgrade pip wheel; \
	$(NLU_VENV)/bin/pip install --quiet -r nlu/requirements.txt
	touch $@

# Trains only when config.yml, the training data or the tokenizer changed.
model: env
	$(COOPBOT) nlu train --if-stale

# Debian's DejaVu fonts, embedded in the printable handouts.
fonts:
	scripts/ensure-fonts

lint: env
	$(VENV)/bin/ruff check bot knowledge nlu scheduler tests benchmarks
	$(VENV)/bin/ruff format --check bot knowledge nlu scheduler tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench-nlu: model
	$(VENV)/bin/python benchmarks/bench_nlu.py

# The baseline is the last commit before the durable inbox (issue 16): its webhook figures
# are printed next to this code's.
bench-chat: model
	$(VENV)/bin/python benchmarks/bench_chat.py --baseline 4b9c48d

bench-reminders: env
	$(VENV)/bin/python benchmarks/bench_reminders.py

bench-broadcast: model
	$(VENV)/bin/python benchmarks/bench_broadcast.py

bench-dashboard: env
	$(VENV)/bin/python benchmarks/bench_dashboard.py

bench-faq: env
	$(VENV)/bin/python benchmarks/bench_faq.py

bench-handout: env
	$(VENV)/bin/python benchmarks/bench_handout.py

bench-retrain: model
	$(VENV)/bin/python benchmarks/bench_retrain.py

clean-env:
	rm -rf $(VENV) $(NLU_VENV)
