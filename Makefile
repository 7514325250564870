# The two commands of the README work on a fresh clone: each makes its own venv and installs.
#   make demo   run the main job (the demo on the embedded simulated cloud when no API key is set)
#   make test   lint, type-check, check the import layers, and run every test (real control plane)
#               and the fuzz targets' quick pass (fuzz/budget.py)
#   make fuzz   every fuzz target at 100,000 examples (an hour or two with -j2), with statistics
#   make pyz    dist/vk-trio.pyz, the single-file build (pex, from requirements/pex.lock)
#   make image  the OCI image in dist/oci (root; mmdebstrap + umoci, no container engine)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint typecheck layers unit controlplane bench clean pyz image fuzz $(FUZZ_FILES)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m vk_trio demo

controlplane: $(STAMP)
	$(BIN)/python -m tests.controlplane build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# The suite mostly waits (control planes, simulated clouds' latencies), so it runs on more
# workers than cores; each worker starts its own control plane, and a file's tests stay on one.
TEST_WORKERS ?= 4
test: lint typecheck layers controlplane
	$(BIN)/pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# One pytest per fuzz file, so that `make -j2 fuzz` runs two at a time.
FUZZ_EXAMPLES ?= 100000
FUZZ_FILES := $(patsubst fuzz/%.py,fuzz-%,$(wildcard fuzz/test_*.py))
fuzz: $(FUZZ_FILES)
fuzz-%: $(STAMP)
	VK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -p no:cacheprovider -q fuzz/$*.py \
		--hypothesis-show-statistics -o log_level=CRITICAL

bench: $(STAMP) controlplane
	$(BIN)/python -m bench.kube_decode

pyz: $(STAMP)
	$(BIN)/python build_zipapp.py

image: pyz
	$(BIN)/python packaging/image/build_image.py

clean:
	rm -rf $(VENV) dist build .mypy_cache .ruff_cache .pytest_cache .hypothesis
