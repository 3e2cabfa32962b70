# wasmgate — two commands on a fresh machine:
#   make run    build everything and start the demo (upstreams + gateway)
#   make test   install what the tests need, then run every test with -race
SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...

# The Go version go.mod asks for (the `go` line).
GO_VERSION := $(shell sed -n 's/^go //p' go.mod)

# External tools, as tool:Debian-package. The demo (make build, make run)
# needs, besides Go, gcc (cgo builds in wasmtime, the engine of the demo's Go
# plugins), wabt's wat2wasm (the raw WAT plugin), the toolchains of
# the Rust, C and AssemblyScript SDKs (their example plugins: PLUGIN_TOOLS,
# Node.js and npm) and curl (cmd/demo/run.sh and the README's examples). The
# tests also need wrk, h2load and nginx (the benchmarks' end-to-end tests)
# and redis-server (rate limits shared through Redis); the bench commands
# install wrk and nginx themselves when they are missing.
#
# The Rust and C SDKs' toolchains: Debian's rustc and cargo with the
# wasm32-wasi standard library (named by path: a rustup rustc earlier on PATH
# has no wasm targets), clang with lld, wasi-libc and the wasm32 builtins.
# A tool named by an absolute path is a file that must exist.
PLUGIN_TOOLS := /usr/bin/rustc:rustc /usr/bin/cargo:cargo clang:clang wasm-ld:lld \
	/usr/lib/rustlib/wasm32-wasi/lib/self-contained/crt1-reactor.o:libstd-rust-dev-wasm32 \
	/usr/lib/wasm32-wasi/libc.a:wasi-libc \
	/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a:libclang-rt-dev-wasm32

DEMO_TOOLS := gcc:gcc wat2wasm:wabt curl:curl node:nodejs npm:npm $(PLUGIN_TOOLS)
TEST_TOOLS := $(DEMO_TOOLS) wrk:wrk nginx:nginx-light h2load:nghttp2-client redis-server:redis-server etcd:etcd-server

.PHONY: all build plugins examples run test test-short alloc-tests fuzz-short deps demo-deps test-deps tools go-check vet fmt bench-proxy clean

all: build

build: demo-deps $(BIN)/wasmgate $(BIN)/demo-upstreams plugins examples

# Every example plugin, from source: Go plugins (GOOS=wasip1) and the raw WAT one (wat2wasm).
plugins: demo-deps
	bash plugins/build.sh

$(BIN)/wasmgate: FORCE | go-check
	$(GO) build -o $@ ./cmd/wasmgate

$(BIN)/demo-upstreams: FORCE | go-check
	$(GO) build -o $@ ./cmd/demo-upstreams

# The Rust, C and AssemblyScript SDKs' example plugins, which the demo serves
# (sdk/build-examples.sh: cargo and asc rebuild only what changed).
examples: demo-deps
	bash sdk/build-examples.sh

FORCE:

# The demo: five upstream services (users, orders, feed, notifications, legacy), each
# run twice (demo-upstreams -instances 2: ports 91xx and 101xx), and the
# gateway with cmd/demo/wasmgate.yaml. Ctrl-C stops everything it started.
run: build
	@bash cmd/demo/run.sh

# ensure_tools WHO,TOOLS,KIND: installs with apt-get the packages of those
# TOOLS (tool:package pairs) that are not installed, when it can (as root,
# with apt-get). When it cannot, it says what is missing and how to get it,
# then stops for KIND demo (the demo cannot run without them) or with
# CI=true; for KIND test it goes on, and the tests that need a missing tool
# skip themselves. nginx-light is plain nginx where the archive has no
# flavours (Debian 13).
define ensure_tools
	@have() { command -v "$$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$$1" ] || [ -x "/sbin/$$1" ] || { [ "$${1#/}" != "$$1" ] && [ -e "$$1" ]; }; }; \
	missing() { tools=(); pkgs=(); for tp in $(2); do have "$${tp%%:*}" || { tools+=("$${tp%%:*}"); pkgs+=("$${tp#*:}"); }; done; }; \
	missing; [ $${#tools[@]} -eq 0 ] && exit 0; \
	why=; \
	if [ "$$(id -u)" != 0 ]; then why="not running as root"; \
	elif ! command -v apt-get >/dev/null 2>&1; then why="apt-get not found"; fi; \
	if [ -z "$$why" ]; then \
	  echo "$(1) needs $${tools[*]}: apt-get install $${pkgs[*]}"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq "$${pkgs[@]}" >/dev/null 2>&1 \
	    || { apt-get update -qq && apt-get install -y -qq "$${pkgs[@]}"; } \
	    || { [[ " $${pkgs[*]} " == *" nginx-light "* ]] && apt-get install -y -qq $${pkgs[*]/nginx-light/nginx}; } \
	    || why="apt-get install $${pkgs[*]} failed"; \
	  missing; [ $${#tools[@]} -eq 0 ] && exit 0; \
	  why=$${why:-"apt-get has $${pkgs[*]} installed, yet no $${tools[*]} on PATH"}; \
	fi; \
	{ echo; \
	  desc=; for i in "$${!tools[@]}"; do desc+="$${desc:+, }$${tools[i]} (package $${pkgs[i]})"; done; \
	  echo "$(1): missing $$desc, and cannot install it: $$why."; \
	  echo "Install it, then run $(1) again:"; \
	  echo "    sudo apt-get install $${pkgs[*]}      # Debian/Ubuntu; elsewhere, your package manager's $${pkgs[*]}"; \
	  case " $${tools[*]} " in *" wat2wasm "*) \
	    echo "(without apt: a wabt release from https://github.com/WebAssembly/wabt/releases, its bin/ on PATH)";; esac; \
	} >&2; \
	if [ "$(3)" = demo ] || [ "$${CI:-}" = true ]; then exit 1; fi; \
	echo "Going on: the tests that need $${tools[*]} skip themselves (with CI=true they fail)." >&2; echo >&2
endef

# go-check: Go is the one tool nothing here installs.
go-check:
	@command -v $(GO) >/dev/null 2>&1 || { \
	  echo "$(GO): not found. wasmgate needs Go $(GO_VERSION) or later (go.mod);" \
	       "install it from https://go.dev/dl/ and put its bin/ on PATH." >&2; exit 1; }

# demo-deps: what make build and make run need (only when missing; it stops
# and says what to install when it cannot install it).
demo-deps: go-check
	$(call ensure_tools,make $(or $(MAKECMDGOALS),build),$(DEMO_TOOLS),demo)

# test-deps: the demo's tools plus the tests' (only when missing).
test-deps: demo-deps
	$(call ensure_tools,make test,$(TEST_TOOLS),test)

deps: test-deps

vet: go-check
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)

# tools: what the tests take from npm, pinned: Wizer, which `wasmgate plugin
# snapshot` runs (installed in bin/tools, which the command also looks in),
# and the AssemblyScript compiler of sdk/assemblyscript (its package-lock).
WIZER := $(BIN)/tools/node_modules/.bin/wizer
ASC := sdk/assemblyscript/node_modules/.bin/asc
tools: $(WIZER) $(ASC)
$(WIZER):
	@command -v npm >/dev/null 2>&1 || { echo "make tools needs npm (Node.js): sudo apt-get install npm" >&2; exit 1; }
	npm install --prefix $(BIN)/tools --no-save --no-audit --no-fund -E @bytecodealliance/wizer@10.0.0
$(ASC): sdk/assemblyscript/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make tools needs npm (Node.js): sudo apt-get install npm" >&2; exit 1; }
	cd sdk/assemblyscript && npm ci --no-audit --no-fund --prefer-offline
	touch $@

test: test-deps vet plugins examples tools
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory alloc-tests
	$(MAKE) --no-print-directory fuzz-short

# The allocation tests skip under the race detector (it makes sync.Pool drop
# items at random): they run again without it.
alloc-tests:
	$(GO) test -count=1 -run 'Alloc|NoAlloc|DoesNotAllocate' ./host/...

# A short pass of every fuzz target that takes hostile input from its
# committed seed corpus (the f.Add seeds and testdata/fuzz): request bytes
# through the whole request path, paths, config files, the route matcher,
# host functions fed by a guest, cache keys, certificate files, upstream
# answers a shadow compares, the claims an authorize policy decides on, and
# http-wasm host functions fed by a guest;
# FUZZ_TIME each. go test fuzzes one target of
# one package per run.
FUZZ_TIME ?= 10s
FUZZ_TARGETS := FuzzRequestPath:./host/server FuzzCleanPath:./host/httpsyntax FuzzParse:./host/config \
	FuzzMatch:./host/router FuzzHostFunctions:./host/abi FuzzKey:./host/cache FuzzLoad:./host/certs \
	FuzzDiff:./host/shadow FuzzDecide:./host/authz FuzzDecodeResponse:./host/idempotency FuzzFuncs:./host/abi/httpwasm
fuzz-short:
	@set -eo pipefail; out=$$(mktemp); trap 'rm -f $$out' EXIT; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t%%:*} ($(FUZZ_TIME))"; \
	  if ! $(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZ_TIME) $${t#*:} >$$out 2>&1; then \
	    grep -v '^fuzz: elapsed' $$out | tail -n 60; \
	    for f in $$(git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' | cut -c4-); do \
	      echo "--- failing input $$f:"; cat "$$f"; done; \
	    exit 1; \
	  fi; \
	  tail -n 2 $$out; \
	done

test-short: vet plugins
	$(GO) test -count=1 -short $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# wasmgate bench proxy installs wrk and nginx itself when they are missing.
bench-proxy: $(BIN)/wasmgate
	$(BIN)/wasmgate bench proxy

clean:
	rm -rf $(BIN) sdk/assemblyscript/node_modules sdk/assemblyscript/build
