# Two commands do all set-up on a fresh machine (Python 3.11 + make):
#   make course   executes every notebook headless on the bundled offline model -> build/
#   make test     runs the unit tests and every notebook (nbval), offline
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.saelab-installed
OFFLINE := SAELAB_OFFLINE=1 MPLBACKEND=Agg

.PHONY: course test unit notebooks lab bench browser clean

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

test: unit notebooks browser

unit: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest tests -q --ignore=tests/browser

notebooks: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 notebooks -q -p no:cacheprovider

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
