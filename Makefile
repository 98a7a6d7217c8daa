GO        ?= go
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=$(BRANCH)
TESTFLAGS ?=
FUZZTIME  ?= 10m

.PHONY: all build deps test vet demo bench fuzz clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o vantage ./cmd/vantage

deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...

# The test command from the README: installs system dependencies (Chromium,
# Prometheus, Alertmanager, iproute2) idempotently, then vets and runs every
# test with the race detector.
test: deps vet
	$(GO) test -race -timeout 20m $(TESTFLAGS) ./...

demo: build
	./vantage demo

bench: build
	$(GO) run ./bench -out BENCHMARKS.md

# Runs every fuzz target for FUZZTIME, one after another with one worker,
# and records command, time, execs, new inputs, crashes and peak RSS in
# docs/fuzzing.md. `make test` runs only the seed corpora.
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

clean:
	rm -f vantage
