# ch11-recipes: every target sets itself up (a .venv with requirements.txt) when needed.
# Use an existing environment instead with: make test PYTHON=/path/to/python
SHELL := /bin/bash
VENV ?= .venv
ifdef PYTHON
PY := $(PYTHON)
STAMP := .install-stamp-$(subst /,_,$(PYTHON))
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg
PYTEST_ARGS ?=

.PHONY: install test test-fast lint data clean recipes recipes-fish readme-table recipe-% recipe-fish \
	recipe-fish-imbalance recipe-fish-capacity recipe-fish-transfer tune tune-fish \
	tune-distributed bench bench-all bench-fish notebook help

help:
	@echo "make recipe-bn      batch norm on MNIST (the main job; sets everything up)"
	@echo "make test           the whole test suite (slow integration tests included)"
	@echo "make test-fast      the suite without the slow tests"
	@echo "make data           prepare the full MNIST offline cache ahead of time"
	@echo "make recipes        the chapter's 15 MNIST experiments, 2 at a time (~34 min), then runs/index.md"
	@echo "make recipes-fish   the 4 fish experiments (recipe-fish and its studies), then runs/index-fish.md"
	@echo "make readme-table   the README's results table from the newest full runs in runs/ (trains nothing)"
	@echo "make recipe-<name>  one of: $(foreach m,$(RECIPE_MODULES),$(firstword $(subst =, ,$(m))))"
	@echo "make recipe-fish    fish species from the course's photos (TEST_DIR=..., DATA_DIR=..., WEIGHTS=imagenet|PATH)"
	@echo "make recipe-fish-imbalance | recipe-fish-capacity | recipe-fish-transfer   the fish studies"
	@echo "make tune           Keras Tuner search: CNN on a 12k MNIST slice, 10 random trials (ARGS=--resume|--overwrite|...)"
	@echo "make tune-fish      Keras Tuner on the fish photos: Hyperband over the hand recipe's CNN family (~12 min; TEST_DIR=DIR, ARGS=...)"
	@echo "make tune-distributed WORKERS=2   the same search, a chief and N workers on 127.0.0.1 (ARGS=\"--data fish\" for the photos)"
	@echo "make bench          time to 99.0%/99.3% MNIST accuracy: keras.io convnet vs the recipes (~24 min; ARGS=--quick)"
	@echo "make bench-all      time every make recipe-*, the tests and the fish input into bench/timings.md (~2 h; ARGS=\"--only recipe-bn test\")"
	@echo "make bench-fish     fish photos: decoding, cache, time to the first step, each augmentation's cost"
	@echo "make notebook       run notebooks/chapter11.ipynb in full, save notebooks/chapter11.executed.ipynb (ARGS=--quick)"
	@echo "make lint | clean"

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
ifndef PYTHON
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
endif
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

data: install
	$(PY) -m recipes.data mnist

# Two pytest workers: most tests are small models whose Python overhead uses one core;
# work stealing keeps both busy to the end (a few tests take a minute).
PYTEST_WORKERS ?= 2
test: install data
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check recipes ch11 tuning tests bench notebooks/build.py

clean:
	rm -rf runs .pytest_cache .ruff_cache build *.egg-info notebooks/*.executed.ipynb
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

# One target per chapter section: make recipe-<name> [ARGS="--quick ..."]
RECIPE_MODULES := gradients=gradients init=initialization activations=activations selu=selu \
	bn=batch_norm clipping=clipping transfer=transfer optimizers=optimizers \
	schedules=schedules regularization=regularization cnn=cnn_hparams \
	gd=gradient_descent losses=losses imbalance=imbalance residual=residual
recipe_module = $(patsubst $(1)=%,%,$(filter $(1)=%,$(RECIPE_MODULES)))

recipe-%: install data
	@test -n "$(call recipe_module,$*)" || { echo "Unknown recipe '$*'. Valid: $(foreach m,$(RECIPE_MODULES),$(firstword $(subst =, ,$(m))))"; exit 2; }
	$(PY) -m ch11.$(call recipe_module,$*) $(ARGS)

# The chapter's 15 MNIST experiments, two at a time on one TensorFlow thread each, the longest
# first; logs in runs/logs/ (ARGS="--jobs 1" streams them one after another)
recipes: install data
	$(PY) -m ch11.run_all $(ARGS)

recipes-fish: install
	$(PY) -m ch11.run_all --group fish $(ARGS)

# Fish photos: the course's splits by default (../shared/data/fish-train for training,
# ../shared/data/fish-val for validation); TEST_DIR=DIR evaluates on a test folder,
# TRAIN_DIR/VAL_DIR replace the defaults, DATA_DIR=DIR takes one folder (train/ val/ test/,
# or one subfolder per class). WEIGHTS=imagenet|PATH adds a MobileNetV2 (transfer learning).
FISH_FOLDERS = $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") $(if $(TRAIN_DIR),--train-dir "$(TRAIN_DIR)") \
	$(if $(VAL_DIR),--val-dir "$(VAL_DIR)") $(if $(TEST_DIR),--test-dir "$(TEST_DIR)")
recipe-fish: install
	$(PY) -m ch11.fish $(FISH_FOLDERS) $(if $(WEIGHTS),--backbone mobilenetv2 --weights "$(WEIGHTS)") $(ARGS)

recipe-fish-imbalance recipe-fish-capacity: recipe-fish-%: install
	$(PY) -m ch11.fish_$* $(FISH_FOLDERS) $(ARGS)

recipe-fish-transfer: install
	$(PY) -m ch11.fish_transfer $(FISH_FOLDERS) $(if $(WEIGHTS),--weights "$(WEIGHTS)") $(ARGS)

tune: install data
	$(PY) -m tuning.search $(ARGS)

# Hyperband over the fish CNN space on ../shared/data/fish-train, fish-val for the objective
# (ARGS="--objective val_macro_auc|val_rare_recall", "--train-dir DIR --val-dir DIR", ...);
# the report compares the best model with the newest matching `make recipe-fish` run.
TEST_DIR ?=
tune-fish: install
	$(PY) -m tuning.search --data fish $(if $(TEST_DIR),--test-dir "$(TEST_DIR)") $(ARGS)

WORKERS ?= 2
tune-distributed: install data
	$(PY) -m tuning.distributed --workers $(WORKERS) $(ARGS)

# Time to 99.0%/99.3% MNIST test accuracy, keras.io convnet vs the recipes (ARGS=--quick|--seeds 0,1,2)
bench: install data
	$(PY) -m bench.time_to_accuracy $(ARGS)

# Every make recipe-*, the test suite and the fish input, timed into bench/timings.md and
# bench/timings.json (committed: compare the next change with them); about 2 hours on
# 2 idle cores. ARGS="--only recipe-bn test" refreshes some rows and keeps the others.
bench-all: install data
	$(PY) -m bench.timings $(ARGS)

# The fish photos' input speed: decoding, the cache, the first step, each augmentation's cost
bench-fish: install
	$(PY) -m bench.fish_input $(ARGS)

# The chapter as a notebook, run top to bottom in a Jupyter kernel on this Python (10.5 min
# measured on 2 idle cores; ARGS=--quick: about a minute); the executed copy with its
# outputs is notebooks/chapter11.executed.ipynb (ignored by git). Edit the cells in
# notebooks/build.py.
notebook: install data
	$(PY) notebooks/build.py --run $(ARGS)

# The README's results table, from the newest finished full run of each recipe in runs/
# (trains nothing; run `make recipes` first, on an idle machine)
readme-table: install
	$(PY) -m ch11.run_all --readme $(ARGS)
