# ioloop_c: every target does its own set-up on a fresh machine.
#   make demo    - build from source into .venv, then serve the Tornado demo app
#   make test    - build from source into .venv, then run the C and Python tests
#   make asan    - the same suite against an ASan+UBSan build (.venv-asan)
#   make bench   - the benchmark suite (installs wrk through apt-get when root)

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
ASAN_VENV ?= .venv-asan
APY := $(ASAN_VENV)/bin/python
BUILD_DEPS := scikit-build cmake ninja "setuptools>=64" wheel
# Extra CMake options, e.g. CMAKE_ARGS=-DIOLOOP_C_WERROR=ON (CI sets it).
CMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv install test ctest pytest demo asan valgrind bench bench-quick lint wrk clean \
	tornado-suite conformance

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q $(BUILD_DEPS)

venv: $(VPY)

# Build from source (never a cached wheel) and install with the test extras.
install: $(VPY)
	rm -rf _skbuild
	CMAKE_ARGS="$(CMAKE_ARGS)" $(VPY) -m pip install -q --no-cache-dir \
	    --no-build-isolation ".[test]"
	@# Also place the built module in the source tree, so that `python` run
	@# from the repository root (where ./ioloop_c shadows the installed
	@# package) imports the same build.
	cd /tmp && $(CURDIR)/$(VPY) -c "import ioloop_c._core as c, shutil; \
	    shutil.copy(c.__file__, '$(CURDIR)/ioloop_c/')"

ctest:
	bash tests/c/run.sh build/ctests

pytest:
	cd tests && ../$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: install ctest pytest

demo: install
	$(VPY) -m pip install -q tornado
	$(VPY) examples/app.py

$(APY):
	$(PYTHON) -m venv $(ASAN_VENV)
	$(APY) -m pip install -q --upgrade pip
	$(APY) -m pip install -q $(BUILD_DEPS)

# The extension built with -fsanitize=address,undefined.  CPython itself is
# not instrumented, so libasan is preloaded; leak detection is off because
# the interpreter keeps memory until exit by design.
asan: $(APY)
	rm -rf _skbuild
	CMAKE_ARGS="$(CMAKE_ARGS) -DIOLOOP_C_SANITIZE=ON" $(APY) -m pip install -q \
	    --no-cache-dir --no-build-isolation ".[test]"
	rm -rf _skbuild
	CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    bash tests/c/run.sh build/ctests-asan
	cd tests && LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    PYTHONMALLOC=malloc ../$(ASAN_VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Tornado's own test suite on ioloop_c through each way in, and on the
# stock loop as the anchor.  Fails if any way in fails a test.
tornado-suite: install
	@status=0; for way in stock configure install policy; do \
	    ( cd /tmp && $(CURDIR)/$(VPY) $(CURDIR)/tests/tornado_suite/run.py $$way ) \
	        > build/tornado-suite-$$way.log 2>&1 || status=1; \
	    printf '%-10s %s / %s\n' $$way "$$(grep -E '^Ran ' build/tornado-suite-$$way.log)" \
	        "$$(grep -E '^(OK|FAILED)' build/tornado-suite-$$way.log)"; \
	done; exit $$status

# CPython's own asyncio tests, every module, on stock asyncio and on ours,
# side by side.  Fails if a test fails on ours but not on stock.
conformance: install
	cd /tmp && $(CURDIR)/$(VPY) $(CURDIR)/tests/conformance/cpython_asyncio.py \
	    --json $(CURDIR)/build/conformance.json

valgrind:
	VALGRIND=1 bash tests/c/run.sh build/ctests-vg

wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
	else echo "wrk is missing and we are not root: install Debian's wrk package"; fi

bench: install wrk
	$(VPY) -m pip install -q ".[bench]" --no-build-isolation
	cd benchmarks && ../$(VPY) -m pytest -q --benchmark-only -p no:cacheprovider .

bench-quick: install
	cd benchmarks && BENCH_QUICK=1 ../$(VPY) -m pytest -q --benchmark-only -p no:cacheprovider .

lint: $(VPY)
	$(VPY) -m pip install -q ruff
	$(VENV)/bin/ruff check ioloop_c tests benchmarks examples

clean:
	rm -rf _skbuild build dist *.egg-info $(VENV) $(ASAN_VENV)
