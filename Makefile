# wasmgate — two commands on a fresh machine:
#   make run    build everything and start the demo (upstreams + gateway)
#   make test   install what the tests need, then run every test with -race
SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...

# Debian packages the tests and benchmarks use (load generator, reference proxies, ...).
APT_PACKAGES := wrk nginx-light haproxy wabt redis-server

.PHONY: all build plugins run test test-short fuzz-short deps vet fmt bench-proxy clean

all: build

build: $(BIN)/wasmgate $(BIN)/demo-upstreams plugins

# Every example plugin, from source: Go plugins (GOOS=wasip1) and the raw WAT one (wat2wasm).
plugins: deps
	bash plugins/build.sh

$(BIN)/wasmgate: FORCE
	$(GO) build -o $@ ./cmd/wasmgate

$(BIN)/demo-upstreams: FORCE
	$(GO) build -o $@ ./cmd/demo-upstreams

FORCE:

# The demo: four upstream services (two instances of users) and the gateway
# with cmd/demo/wasmgate.yaml. Ctrl-C stops everything it started.
run: deps build
	@bash cmd/demo/run.sh

# deps installs the system packages tests need (idempotent; skips what is there).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq $$missing >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $$missing; }; \
	fi
	$(GO) mod download

vet:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)

test: deps vet plugins
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory fuzz-short

# A short pass of every fuzz target that takes hostile input (request bytes,
# paths, config files) from its committed seed corpus; FUZZ_TIME each.
# go test fuzzes one target of one package per run.
FUZZ_TIME ?= 15s
FUZZ_TARGETS := FuzzRequestPath:./host/server FuzzCleanPath:./host/httpsyntax FuzzParse:./host/config
fuzz-short:
	@set -eo pipefail; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t%%:*} ($(FUZZ_TIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZ_TIME) $${t#*:} | tail -n 2; \
	done

test-short: vet plugins
	$(GO) test -count=1 -short $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

bench-proxy: $(BIN)/wasmgate deps
	$(BIN)/wasmgate bench proxy

clean:
	rm -rf $(BIN)
