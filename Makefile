# Two commands do all set-up on a fresh machine (Python 3.11 + make):
#   make course   executes every notebook headless on the bundled offline model -> build/
#   make test     runs the unit tests and every notebook (nbval), offline and online against a local stand-in
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.saelab-installed
OFFLINE := SAELAB_OFFLINE=1 MPLBACKEND=Agg

.PHONY: course test unit notebooks notebooks-online lab bench browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: a bare `pip install torch` may pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

course: $(STAMP)
	mkdir -p build/notebooks build/html
	$(OFFLINE) $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=900 \
		--output-dir build/notebooks notebooks/*.ipynb
	$(BIN)/jupyter nbconvert --to html --output-dir build/html build/notebooks/*.ipynb
	@echo "Executed notebooks are in build/notebooks/, HTML pages in build/html/"

test: unit notebooks notebooks-online browser

unit: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest tests -q --ignore=tests/browser

notebooks: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 notebooks -q -p no:cacheprovider

# Every notebook's online branch (GPT-2 / DistilGPT2 + OpenAI's SAEs + a hub dataset) against a local stand-in:
# random weights in a Hugging Face cache (HF_HUB_OFFLINE=1), SAEs served on 127.0.0.1 (SAELAB_OPENAI_SAE_URL),
# a local text set (SAELAB_TEXTS), a fresh SAELAB_CACHE under build/, SAELAB_OFFLINE unset and
# SAELAB_BUDGET=smoke. Built once under build/standin/ (~2 GB, ~1.5 min), then reused.
notebooks-online: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m tests.standin run --budget smoke -- \
		$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 notebooks -q -p no:cacheprovider

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

# Real browser: JupyterLab + Debian's headless Chromium (never a browser download); screenshots in build/.
browser: $(STAMP)
	test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "WARNING: no /usr/bin/chromium and cannot apt-get it: the browser test will SKIP"
	$(BIN)/python -m pip install -q -e ".[browser]"
	$(OFFLINE) $(BIN)/python -m pytest tests/browser -v -rs -p no:cacheprovider
	@echo "Screenshots: build/screenshots/"

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build
