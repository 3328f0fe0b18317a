# asrkit developer targets. Every target installs what it needs: a fresh clone needs only Python 3.10+.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.asrkit-installed
PYTEST_ARGS ?=

.PHONY: install sysdeps test lint clean help demo bench bench-feats bench-train bench-decode

help:
	@echo "make install   create $(VENV) and install asrkit with its dev tools"
	@echo "make test      install if needed, then run the whole test suite"
	@echo "make lint      ruff over the package and the tests"
	@echo "make demo      run recipes/synth/run.sh --size demo: every stage on the offline corpus, then a WER table"
	@echo "make bench     feature, training and decoding benchmarks, one summary table"

install: $(STAMP)

# Re-installs only when the package metadata changes, so a second `make install` is a no-op.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Optional command-line tools some tests and recipes use (sox for wav.scp pipes); best effort.
sysdeps:
	@bash scripts/install-sysdeps.sh

test: install sysdeps
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check asrkit tests

demo: install sysdeps
	cd recipes/synth && ./run.sh --size demo

# kaldi-native-fbank is a peer measured by the benchmark only, not a dependency of asrkit.
bench-feats: install
	$(PY) -m pip install --quiet kaldi-native-fbank || true
	$(PY) benchmarks/bench_feats.py

bench-train: install
	$(PY) benchmarks/bench_train.py

bench-decode: install
	$(PY) benchmarks/bench_decode.py --write-docs

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
