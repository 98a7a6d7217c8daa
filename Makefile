GO        ?= go
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILDUSER ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILDDATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=$(BRANCH) \
             -X github.com/prometheus/common/version.BuildUser=$(BUILDUSER) \
             -X github.com/prometheus/common/version.BuildDate=$(BUILDDATE)
TESTFLAGS ?=
FUZZTIME  ?= 10m

.PHONY: all build deps test vet demo bench bench-detection fuzz stress clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o vantage ./cmd/vantage

deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...

# The test command from the README: installs system dependencies (Chromium,
# Prometheus, Alertmanager, iproute2, blackbox_exporter) idempotently, then vets and runs every
# test with the race detector.
test: deps vet
	$(GO) test -race -timeout 20m $(TESTFLAGS) ./...

# The slow packages (real Chromium, daemons, Alertmanager, timing) with
# -race -count=3 while two CPU-burning processes run beside them: run it
# before submitting changes to tests. Narrow it with STRESS_PKGS and
# STRESS_RUN, e.g. make stress STRESS_PKGS=./daemon STRESS_RUN='^TestStatusFromRealParts$$'
STRESS_PKGS  ?= ./probe/... ./daemon ./cmd/vantage ./bench ./timeline ./web ./demo ./alerting/... ./fullstack
STRESS_RUN   ?=
STRESS_COUNT ?= 3
stress:
	GO='$(GO)' STRESS_RUN='$(STRESS_RUN)' STRESS_COUNT='$(STRESS_COUNT)' ./scripts/stress.sh $(TESTFLAGS) $(STRESS_PKGS)

demo: build
	./vantage demo

# The throughput (with a CPU profile of the plain-HTTP daemon), side by
# side with blackbox_exporter, micro and alert-latency benchmarks. The detection
# benchmark is separate (bench-detection) because it takes about 45 minutes;
# this target keeps its section of BENCHMARKS.md.
bench: build
	$(GO) run ./bench -out BENCHMARKS.md
	@echo "Detection benchmark (about 45 minutes, not run by make bench): make bench-detection"

# One daemon watching several demo shop copies: a healthy one under CPU load
# with the browser journey, and lb2 slowed on 100/30/10 % of responses, 5 min
# on and 3 min off, 5 trials each. Rewrites only its section of BENCHMARKS.md.
# A smoke run: make bench-detection BENCH_DETECTION_FLAGS='-detection.trials=1
# -detection.on=2m -detection.off=1m -detection.warmup=1m -out='
BENCH_DETECTION_FLAGS ?=
bench-detection:
	$(GO) run ./bench -detection -out BENCHMARKS.md $(BENCH_DETECTION_FLAGS)

# Runs every fuzz target for FUZZTIME, one after another with one worker,
# and records command, time, execs, new inputs, crashes and peak RSS in
# docs/fuzzing.md. `make test` runs only the seed corpora.
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

clean:
	rm -f vantage
