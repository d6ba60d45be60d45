# Engage: the two commands that matter are `make run` and `make test` (see README.md).
.PHONY: all run stop test build bench format clean deps

# The scripts run cmake's own make; keep this make's flags (and "Entering directory" lines)
# out of it.
SCRIPT_ENV = env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL

all: build

# The servers' topology of `make run`: single, sentinel or cluster (also read from the
# environment: TOPOLOGY=cluster make run).
TOPOLOGY ?= single

# Install missing packages, build (release), start everything on free ports, supervise.
run:
	@$(SCRIPT_ENV) TOPOLOGY=$(TOPOLOGY) scripts/run.sh

# Stop what `make run` started (from another shell), PostgreSQL included.
stop:
	@$(SCRIPT_ENV) scripts/stop.sh

# Install missing packages, sanitizer build, private stack, every test, summary.
test:
	@$(SCRIPT_ENV) scripts/test.sh

deps:
	@$(SCRIPT_ENV) scripts/deps.sh

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
	cmake --build build -j$$(nproc)

# Release build, private stack under /var/tmp, ~12 minutes of measurements: prints the table,
# writes .run/bench.json and docs/benchmarks.md (BENCH_SCALE=0.1 for a quick trial).
bench:
	@$(SCRIPT_ENV) scripts/bench.sh

format:
	@find lib services tools tests -type f \( -name '*.c' -o -name '*.h' \) -not -path '*/build*' -print0 \
		| xargs -0 -r clang-format -i
	@echo "formatted"

clean:
	rm -rf build build-test
