# loanflow — `make run` starts everything in one process; `make test` runs every test.
# Only Go is needed: modules come from the Go module proxy on first use.

GO       ?= go
MODULES  := contracts pkg services/ingress services/scoring services/offers services/audit services/console deploy/allinone deploy/cmd deploy/deploytest tests bench
BIN      := bin
# make run settings (any LOANFLOW_* variable in the environment is honoured too).
export LOANFLOW_DATA_DIR     ?= ./data
export LOANFLOW_CLIENTS_FILE ?= deploy/demo/clients.csv

.PHONY: run build test chromium lint fmt tidy modules-standalone bench fuzz fuzz-short soak chaos conformance clean

# Fuzz targets as package:Target. make test runs each for FUZZ_SHORT, make fuzz for FUZZTIME.
FUZZ_TARGETS := ./services/ingress/internal/intake:FuzzParse ./services/ingress:FuzzLoanApproval \
	./contracts/events:FuzzEventDecoders ./contracts/partnerapi:FuzzMoney \
	./services/audit/internal/chain:FuzzCanonicalPayload ./pkg/offerlink:FuzzVerify
# A count, not a duration: a duration races a Go 1.26 fuzz-coordinator bug (golang/go#75804)
# that fails a clean run with "context deadline exceeded" at the deadline.
FUZZ_SHORT ?= 20000x
FUZZTIME   ?= 2m

## run: start embedded NATS and all four services in one process (Ctrl-C stops it cleanly)
run:
	$(GO) run ./deploy/allinone/cmd/loanflow

## build: every binary into ./bin, and nats-server (the version tests/go.mod pins) for a cluster
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ingress ./services/ingress/cmd/ingress
	$(GO) build -o $(BIN)/scoring ./services/scoring/cmd/scoring
	$(GO) build -o $(BIN)/offers  ./services/offers/cmd/offers
	$(GO) build -o $(BIN)/audit   ./services/audit/cmd/audit
	$(GO) build -o $(BIN)/console ./services/console/cmd/console
	$(GO) build -o $(BIN)/loanflow ./deploy/allinone/cmd/loanflow
	$(GO) build -o $(BIN)/conformance ./tests/conformance/cmd/conformance
	cd tests && $(GO) build -o ../$(BIN)/nats-server github.com/nats-io/nats-server/v2

## test: lint, every module's tests on its own go.mod (GOWORK=off, as the team owning it runs them) with the race detector, each fuzz target briefly
test: lint modules-standalone chromium
	@for m in $(MODULES); do echo "== go test $$m (GOWORK=off)"; \
		(cd $$m && GOWORK=off $(GO) test -race -count=1 -timeout 10m ./...) || { echo "tests of module $$m failed"; exit 1; }; done
	@$(MAKE) --no-print-directory fuzz-short

## fuzz-short: every fuzz target for FUZZ_SHORT (inside make test)
fuzz-short:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_SHORT) $$pkg 2>&1) || { echo "$$out"; echo "fuzz $$fn failed: the input is in $$pkg/testdata/fuzz/$$fn"; exit 1; }; \
		echo "fuzz $$fn: ok ($(FUZZ_SHORT))"; done

## fuzz: every fuzz target for FUZZTIME (default 2m each)
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

## chromium: Debian's chromium for the console's browser tests, installed once with apt-get; the tests fail without it (LOANFLOW_SKIP_BROWSER=1 skips them, saying so)
chromium:
	@[ -x /usr/bin/chromium ] || { echo "installing Debian chromium for the console's browser tests"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		log=$$(mktemp); ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium) >$$log 2>&1 \
		|| [ "$$LOANFLOW_SKIP_BROWSER" = 1 ] \
		|| { tail -n 20 $$log; echo "chromium could not be installed (set LOANFLOW_SKIP_BROWSER=1 to run without the browser tests)"; exit 1; }; }

## lint: gofmt and go vet over every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(addprefix ./,$(addsuffix /...,$(MODULES)))
	$(GO) vet -tags docker ./deploy/deploytest/...

## modules-standalone: every module builds on its own go.mod, as a team building one service would
modules-standalone:
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) build ./...) || { echo "module $$m does not build alone"; exit 1; }; done

## bench: the benchmarks (figures in README's Performance section); the end-to-end one writes bench/results/
bench:
	$(GO) test -run x -bench . -benchtime 3x ./services/audit/
	$(GO) test -run x -bench . ./services/audit/internal/chain/
	$(GO) run ./bench/cmd/bench $(BENCH_FLAGS)

## soak: 10 minutes at 1,000 applications/s on the all-in-one; goroutines, RSS and errors
soak:
	$(GO) run ./tests/soak -duration $(or $(SOAK_DURATION),10m) -rate $(or $(SOAK_RATE),1000)

## chaos: 3 nats-server processes and the real service binaries, killed under load (make test runs 30 s of it)
chaos:
	LOANFLOW_CHAOS_DURATION=$(or $(CHAOS_DURATION),5m) LOANFLOW_CHAOS_RATE=$(or $(CHAOS_RATE),200) \
		$(GO) test -count=1 -v -timeout 60m -run TestClusterChaos ./tests/chaos/

## conformance: check a partner endpoint as Yandex would (make conformance URL=http://host/integrations TOKEN=...)
conformance:
	$(GO) run ./tests/conformance/cmd/conformance --url $(URL) --token $(TOKEN)

## fmt: format every module
fmt:
	gofmt -w $(MODULES)

## tidy: tidy every module's go.mod
tidy:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

clean:
	rm -rf $(BIN)
