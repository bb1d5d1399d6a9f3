# The two commands of the README. Each creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs bench bench-dist clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/digits_demo.py

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

# mypy on src/ (the typed backend interface) and the example programs (py.typed)
typecheck: $(STAMP)
	$(BIN)/mypy

# the documentation site (site/): MkDocs + mkdocstrings, warnings are errors
docs: $(STAMP)
	$(BIN)/pip install -q -e ".[docs]"
	$(BIN)/mkdocs build --strict

# make bench [DEVICE=gpu]: the issue-15 ratios from interleaved runs (JAX, then torch), the
# torch kernels per step, and the model families on both backends (docs/performance.md).
# benchmarks/bench_jax.py (one process per configuration: peak memory, a CNN) is run by hand.
DEVICE ?= cpu
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_jax_interleaved.py --device $(DEVICE)
	$(BIN)/python benchmarks/bench_torch.py --device $(subst gpu,cuda,$(DEVICE))
	$(BIN)/python benchmarks/torch_kernels.py --device $(subst gpu,cuda,$(DEVICE))
	$(BIN)/python benchmarks/families_jax.py --device $(DEVICE)
	$(BIN)/python benchmarks/families_torch.py --device $(subst gpu,cuda,$(DEVICE))

# make bench-dist [DEVICE=gpu]: per-device parameter + optimizer bytes and steps/s, data
# parallel vs sharded (ModelParallel), ~10M parameters on 4 devices (CPU: XLA host devices),
# then torch DDP vs FSDP2 with 4 gloo processes
bench-dist: $(STAMP)
	$(BIN)/python benchmarks/bench_dist.py --device $(DEVICE) --torch

clean:
	rm -rf $(VENV) build site *.egg-info
