# asrkit developer targets. Every target installs what it needs: a fresh clone needs only Python 3.10+.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.asrkit-installed
LOCK := requirements-lock.txt
# The installer versions are pinned too: a new pip or uv must not change what gets installed.
PIP_VERSION := 26.3
UV_VERSION := 0.13.9
PYTEST_ARGS ?=
# The locked torch is a CUDA build: the venv takes ~5.8 GB, and pip needs room to unpack on top.
# `make install MIN_FREE_GB=0` skips the check.
MIN_FREE_GB ?= 6

.PHONY: install lock sysdeps test lint clean help demo demo-seeds bench bench-feats bench-train bench-decode bench-gpu

help:
	@echo "make install   create $(VENV) and install asrkit with its dev tools, exactly as $(LOCK) says"
	@echo "make lock      regenerate $(LOCK) from pyproject.toml's version ranges"
	@echo "make test      install if needed, then run the whole test suite"
	@echo "make lint      ruff over the package and the tests"
	@echo "make demo      run recipes/synth/run.sh --size demo: every stage on the offline corpus, then a WER table"
	@echo "make demo-seeds the demo's trained stages for seeds 1 2 3, then mean ± sd per system (about 3x the demo)"
	@echo "make bench     feature, training and decoding benchmarks, one summary table"
	@echo "make bench-gpu every GPU figure (features, training MFU/stall, decoding, memory) into docs/benchmarks.md"

install: $(STAMP)

# Every package at the exact version (and file hash) in $(LOCK): a fresh clone installs what the
# tests ran with, whatever the package index publishes next. asrkit itself is installed without
# dependencies and without build isolation, so no unlocked build tool is fetched either. The install
# ends with the smoke check (torch, torchaudio's compiled ops, sentencepiece, kaldiio): a broken
# pair stops here with one line. (setuptools' generic "Editable installation" warning is silenced.)
# Re-installs only when the package metadata or the lock changes.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) scripts/check-disk.py $(VENV) $(MIN_FREE_GB)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	$(PY) -m asrkit.envcheck
	@touch $(STAMP)

# Regenerate $(LOCK) from pyproject.toml's ranges (newest versions that satisfy them, for every
# Python >= 3.10 and platform, with hashes). Run the tests and `make bench` before committing it.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.10 --extra dev --generate-hashes \
		--no-emit-index-url --custom-compile-command "make lock" -o $(LOCK) pyproject.toml

# Optional command-line tools some tests and recipes use (sox for wav.scp pipes); best effort.
sysdeps:
	@bash scripts/install-sysdeps.sh

test: install sysdeps
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check asrkit tests

demo: install sysdeps
	cd recipes/synth && ./run.sh --size demo

# Stages 3-10 of the demo once per seed (recipes/synth/seeds/seed<N>), then recipes/synth/seeds/RESULTS.md.
demo-seeds: install sysdeps
	cd recipes/synth && ./local/seeds.sh --size demo --seeds "1 2 3"

# kaldi-native-fbank is a peer measured by the benchmark only, not a dependency of asrkit.
bench-feats: install
	$(PY) -m pip install --quiet kaldi-native-fbank || true
	$(PY) benchmarks/bench_feats.py

bench-train: install
	$(PY) benchmarks/bench_train.py

bench-decode: install
	$(PY) benchmarks/bench_decode.py --write-docs

# On a CUDA machine: <= 8 minutes, writes its table into docs/benchmarks.md. The tests run its --dry-run.
bench-gpu: install
	$(PY) benchmarks/bench_gpu.py

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
