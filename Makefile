# `make run` and `make test` set up whatever is missing, then run. See README.md.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-done
RASA_MODEL := models/rasa/.trained
RASA_INPUTS := config.yml domain.yml $(wildcard data/*.yml)

.PHONY: setup model run test lint clean

setup:
	@bash scripts/setup.sh

$(RASA_MODEL): $(RASA_INPUTS) $(STAMP)
	@echo "==> training the Rasa model (a few minutes)"
	@rm -rf models/rasa && mkdir -p models/rasa
	$(BIN)/rasa train --config config.yml --domain domain.yml --data data --out models/rasa --fixed-model-name demo
	@touch $@

$(STAMP):
	@bash scripts/setup.sh

model: setup $(RASA_MODEL)

run: model
	$(BIN)/emobot run

# Two pytest workers side by side, a test module each at a time (pytest-xdist): most tests wait on
# servers, Rasa and a browser, so two share 2 cores well. Then, alone, the tests marked `serial`,
# which measure time or load the CPU on purpose. Each part fails if it collects no test.
TEST_WORKERS ?= 2

test: model
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -m serial

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf .emobot models/rasa .pytest_cache
