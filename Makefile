# ioloop_c: every target does its own set-up on a fresh machine.
#   make demo    - build from source into .venv, then serve the Tornado demo app
#   make test    - build from source into .venv, then run the C and Python tests
#   make asan    - the same suite against an ASan+UBSan build (.venv-asan)
#   make bench   - the benchmark suite (installs wrk through apt-get when root)
#   make bench-versions - the headline benchmarks on each of BENCH_VERSIONS
#   make bench-echo - the echo / aiohttp benchmark alone (benchmarks/echo_bench.py)
#   make bench-udp - the UDP echo benchmark alone (benchmarks/udp_bench.py)
#   make bench-iostream - Tornado's IOStream data path (benchmarks/tornado_stream_bench.py)

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
ASAN_VENV ?= .venv-asan
APY := $(ASAN_VENV)/bin/python
BUILD_DEPS := scikit-build cmake ninja "setuptools>=64" wheel
# Extra CMake options, e.g. CMAKE_ARGS=-DIOLOOP_C_WERROR=ON (CI sets it).
CMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv install test ctest pytest demo asan valgrind bench bench-quick bench-pytest lint wrk clean \
	bench-deps bench-echo bench-udp bench-iostream \
	tsan soak soak-short refleak debug-python \
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
	    --no-build-isolation ".[test,bench]"
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

# The thread tests against a ThreadSanitizer build (.venv-tsan).  CPython is
# not instrumented, so libtsan is preloaded: its interceptors still see the
# GIL's pthread mutex and condition variable, which is what orders every
# access to the loop's state, so no suppressions are needed and any report
# fails the run.  The tests run at 5% volume (GIL hand-offs are slow here).
TSAN_VENV ?= .venv-tsan
TPY := $(TSAN_VENV)/bin/python
$(TPY):
	$(PYTHON) -m venv $(TSAN_VENV)
	$(TPY) -m pip install -q --upgrade pip
	$(TPY) -m pip install -q $(BUILD_DEPS)

tsan: $(TPY)
	rm -rf _skbuild
	CMAKE_ARGS="-DIOLOOP_C_TSAN=ON" $(TPY) -m pip install -q \
	    --no-cache-dir --no-build-isolation ".[test]"
	rm -rf _skbuild
	CFLAGS="-fsanitize=thread" bash tests/c/run.sh build/ctests-tsan
	cd tests && LD_PRELOAD="$$(gcc -print-file-name=libtsan.so)" IOLOOP_C_STRESS=0.05 \
	    TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" \
	    PYTHONMALLOC=malloc ../$(TSAN_VENV)/bin/pytest -q -p no:cacheprovider \
	    test_threads.py test_thread_stress.py $(PYTEST_ARGS)

# The whole suite and the -R 3:3 leak hunt on Debian's debug CPython
# (python3.11-dbg, installed with apt-get when root): the interpreter's own
# assertions check every C-API call, and sys.gettotalrefcount() adds
# reference counts to the leak hunt.  uvloop has no debug-ABI wheel, so its
# side of the shared tests is not collected here.
DBG_VENV ?= .venv-dbg
DPY := $(DBG_VENV)/bin/python
DBG_PYTHON ?= python3.11-dbg
$(DPY):
	@if ! command -v $(DBG_PYTHON) >/dev/null 2>&1 || \
	    ! $(DBG_PYTHON) -c "import test.test_asyncio.utils" 2>/dev/null; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq \
	        python3.11-dbg python3.11-dev python3.11-venv libpython3.11-testsuite; \
	    else echo "needs Debian's python3.11-dbg and libpython3.11-testsuite (root)"; exit 1; fi; \
	fi
	$(DBG_PYTHON) -m venv $(DBG_VENV)
	$(DPY) -m pip install -q --upgrade pip
	$(DPY) -m pip install -q $(BUILD_DEPS) pytest pytest-timeout pytest-benchmark \
	    hypothesis tornado

debug-python: $(DPY)
	rm -rf _skbuild
	$(DPY) -m pip install -q --no-cache-dir --no-build-isolation .
	rm -rf _skbuild
	cd tests && ../$(DPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	$(DPY) tools/refleak.py -R 3:3

# Load and soak tests (marker `soak`); soak-short is CI's scaled-down form.
soak: install
	cd tests && ../$(VENV)/bin/pytest -q -p no:cacheprovider -m soak $(PYTEST_ARGS)

soak-short: install
	cd tests && IOLOOP_C_SOAK=short ../$(VENV)/bin/pytest -q -p no:cacheprovider -m soak \
	    $(PYTEST_ARGS)

# CPython-style -R 3:3 leak hunt: fd and memory-block counts per repetition.
refleak: install
	$(VPY) tools/refleak.py -R 3:3

# Tornado's own test suite on ioloop_c through each way in, and on the
# stock loop as the anchor.  Fails if any way in fails a test; up to three
# failures get one rerun in a fresh process (run.py --rerun: some of
# Tornado's tests hold 0.1 s limits that a loaded machine misses).
TORNADO_WAYS ?= stock configure install policy mainloop
tornado-suite: install
	@mkdir -p build; status=0; for way in $(TORNADO_WAYS); do \
	    ( cd /tmp && $(CURDIR)/$(VPY) $(CURDIR)/tests/tornado_suite/run.py --rerun $$way ) \
	        > build/tornado-suite-$$way.log 2>&1 || status=1; \
	    printf '%-10s %s / %s\n' $$way "$$(grep -E '^Ran ' build/tornado-suite-$$way.log | head -1)" \
	        "$$(grep -E '^(OK|FAILED)' build/tornado-suite-$$way.log | tail -1)"; \
	done; exit $$status

# CPython's own asyncio tests, every module, on stock asyncio and on ours,
# side by side (the two sides of a module in two children at once).  Fails
# if a test fails on ours but not on stock.
CONFORMANCE_ARGS ?= --jobs 2
conformance: install
	cd /tmp && $(CURDIR)/$(VPY) $(CURDIR)/tests/conformance/cpython_asyncio.py \
	    $(CONFORMANCE_ARGS) --json $(CURDIR)/build/conformance.json

# The Python matrix: on each of MATRIX_VERSIONS, a -Werror build into its
# own .venv-3.X, our pytest suite, that version's own test.test_asyncio on
# stock and on ours, and Tornado's suite through each way in; 3.11 and 3.12
# from the host, 3.13+ from the Debian sid chroot (tools/sid_env.sh, made
# once and cached).  Summary: build/matrix/summary.md and summary.json.
# MATRIX_ARGS passes options to tools/matrix.py (e.g. --jobs 1,
# --ways configure,install).
MATRIX_VERSIONS ?= 3.11 3.13 3.14 3.15
MATRIX_ARGS ?=
.PHONY: matrix
matrix:
	python3 tools/matrix.py $(MATRIX_ARGS) $(MATRIX_VERSIONS)

valgrind:
	VALGRIND=1 bash tests/c/run.sh build/ctests-vg

wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
	else echo "wrk is missing and we are not root: install Debian's wrk package"; fi

# The whole suite on asyncio, uvloop, stock Tornado and ioloop_c, alternating:
# benchmarks/results/RESULTS.md and PNG plots.  bench-quick is CI's smoke run
# (under two minutes, no thresholds); bench-pytest the pytest-benchmark files.
bench: install wrk bench-deps
	$(VPY) benchmarks/run_all.py --out benchmarks/results
	$(VPY) benchmarks/echo_bench.py --out benchmarks/results/echo
	$(VPY) benchmarks/udp_bench.py --rounds 5 --out benchmarks/results/udp

# bench-quick's pytest includes benchmarks/test_echo_bench.py, which runs
# echo_bench.py --quick once and keeps its tables in build/bench-quick/echo.
bench-quick: install wrk bench-deps
	$(VPY) benchmarks/run_all.py --quick --out build/bench-quick
	cd benchmarks && BENCH_QUICK=1 ECHO_BENCH_OUT=$(CURDIR)/build/bench-quick/echo \
	    ../$(VPY) -m pytest -q --benchmark-disable -p no:cacheprovider .

# The echo benchmark alone (issue 14): echo at 1/10/100 connections x 100 B
# to 1 MiB on every loop, memory per idle connection, aiohttp under wrk.
# ECHO_ARGS narrows it, e.g. ECHO_ARGS="--kinds protocol --sizes 100".
ECHO_ARGS ?=
bench-echo: install wrk bench-deps
	$(VPY) benchmarks/echo_bench.py --out benchmarks/results/echo $(ECHO_ARGS)

# UDP echo (issue 14, item 3): 1 and 10 clients on asyncio, uvloop, ioloop_c
# native and ioloop_c with asyncio's transport.  UDP_ARGS e.g. "--rounds 1".
UDP_ARGS ?= --rounds 5
bench-udp: install
	$(VPY) benchmarks/udp_bench.py --out benchmarks/results/udp $(UDP_ARGS)

# Tornado's data path (IOStream, HTTP bodies, websockets) on stock, uvloop,
# ours with Tornado's IOStream and ours with the native one.
IOSTREAM_BENCH_ARGS ?=
bench-iostream: install
	cd /tmp && $(CURDIR)/$(VPY) $(CURDIR)/benchmarks/tornado_stream_bench.py $(IOSTREAM_BENCH_ARGS)

# The echo benchmark's anchors: aiofastnet patched onto loops, aiohttp.
bench-deps: $(VPY)
	$(VPY) -m pip install -q aiofastnet aiohttp

# The headline benchmarks on each Python of BENCH_VERSIONS (3.11 on the host,
# 3.13-3.15 in the sid chroot, tools/sid_env.sh), each built from source into
# .venv-X.Y, BENCH_RUNS runs each: asyncio, uvloop and ioloop_c side by side,
# and Tornado's hello-world under wrk (server on CPU 0, wrk on the host on
# CPU 1).  Tables in benchmarks/results/versions/ (X.Y.md/.json per version,
# versions.md/.json combined); raw files in build/bench-versions/.
BENCH_VERSIONS ?= 3.11 3.15
BENCH_RUNS ?= 3
BENCH_VERSIONS_ARGS ?=
.PHONY: bench-versions
bench-versions: wrk
	$(PYTHON) benchmarks/versions.py --versions "$(BENCH_VERSIONS)" --runs $(BENCH_RUNS) \
	    $(BENCH_VERSIONS_ARGS)

bench-pytest: install
	cd benchmarks && ../$(VPY) -m pytest -q --benchmark-only -p no:cacheprovider .

lint: $(VPY)
	$(VPY) -m pip install -q ruff
	$(VENV)/bin/ruff check ioloop_c tests benchmarks examples tools

clean:
	rm -rf _skbuild build dist *.egg-info $(VENV) $(ASAN_VENV) $(TSAN_VENV) $(DBG_VENV)

# Real libraries against real servers (tests/real/), on stock asyncio, uvloop
# and ioloop_c: aiohttp, websockets (both ends in-process), asyncpg against a
# private PostgreSQL, redis-py against a private Redis, each started by the
# fixtures from Debian's binaries in a temporary directory on a free port.
# Debian's packages are installed when missing and we are root.  With
# IOLOOP_C_PG_DSN and IOLOOP_C_REDIS_URL both set, those servers are used
# and nothing is installed (the sid chroot has no server binaries: start the
# servers on the host with tests/real/real_servers.py -- CMD).  Under CI a
# missing library or server fails the run instead of skipping.
# Keep REAL_DEPS in step with the `real` extra of pyproject.toml.
REAL_DEPS := aiohttp asyncpg redis websockets
REAL_STRICT := $(if $(filter true 1,$(CI)),1,0)
.PHONY: real-servers
real-servers: install
	@if [ -n "$$IOLOOP_C_PG_DSN" ] && [ -n "$$IOLOOP_C_REDIS_URL" ]; then \
	    echo "real-servers: using $$IOLOOP_C_PG_DSN and $$IOLOOP_C_REDIS_URL"; \
	else \
	    missing=""; \
	    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	        command -v initdb >/dev/null 2>&1 || missing=" postgresql"; \
	    command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	    if [ -z "$$missing" ]; then :; \
	    elif [ "$$(id -u)" = 0 ]; then \
	        echo "real-servers: apt-get install$$missing"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	            apt-get install -y -qq $$missing >/dev/null || exit 1; \
	    elif [ "$(REAL_STRICT)" = 1 ]; then \
	        echo "real-servers: missing$$missing and not root to install it"; exit 1; \
	    else echo "real-servers: missing$$missing (not root): their tests skip"; fi; \
	fi
	$(VPY) -m pip install -q $(REAL_DEPS)
	cd tests && IOLOOP_C_REAL_STRICT=$(REAL_STRICT) ../$(VPY) -m pytest -q \
	    -p no:cacheprovider -m real -rs real $(PYTEST_ARGS)

# The same tests on the sid chroot's Pythons (tools/sid_env.sh), against
# servers started here on the host: the chroot shares the host's network
# but has no server binaries, so they are passed in by address.
REAL_SID_PYTHONS ?= 3.13 3.14 3.15
.PHONY: real-servers-sid
real-servers-sid:
	$(PYTHON) tests/real/real_servers.py -- sh -c 'status=0; \
	    for v in $(REAL_SID_PYTHONS); do echo "=== python$$v"; \
	        tools/sid_env.sh run env IOLOOP_C_PG_DSN="$$IOLOOP_C_PG_DSN" \
	            IOLOOP_C_REDIS_URL="$$IOLOOP_C_REDIS_URL" \
	            IOLOOP_C_PG_UNIX_DSN="$$IOLOOP_C_PG_UNIX_DSN" \
	            IOLOOP_C_REDIS_UNIX_URL="$$IOLOOP_C_REDIS_UNIX_URL" \
	            IOLOOP_C_REAL_TIMEOUT="$${IOLOOP_C_REAL_TIMEOUT:-60}" \
	            make real-servers PYTHON=python$$v VENV=.venv-$$v || status=1; \
	    done; exit $$status'
