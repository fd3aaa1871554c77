# loanflow — `make run` starts everything in one process; `make test` runs every test.
# Only Go is needed: modules come from the Go module proxy on first use.

GO       ?= go
MODULES  := contracts pkg services/ingress services/scoring services/offers services/audit deploy/allinone tests
BIN      := bin
# make run settings (any LOANFLOW_* variable in the environment is honoured too).
export LOANFLOW_DATA_DIR     ?= ./data
export LOANFLOW_CLIENTS_FILE ?= deploy/demo/clients.csv

.PHONY: run build test lint fmt tidy modules-standalone bench clean

## run: start embedded NATS and all four services in one process (Ctrl-C stops it cleanly)
run:
	$(GO) run ./deploy/allinone/cmd/loanflow

## build: every binary into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ingress ./services/ingress/cmd/ingress
	$(GO) build -o $(BIN)/scoring ./services/scoring/cmd/scoring
	$(GO) build -o $(BIN)/offers  ./services/offers/cmd/offers
	$(GO) build -o $(BIN)/audit   ./services/audit/cmd/audit
	$(GO) build -o $(BIN)/loanflow ./deploy/allinone/cmd/loanflow

## test: lint, every module's tests with the race detector, and each module alone (GOWORK=off)
test: lint modules-standalone
	$(GO) test -race -count=1 -timeout 10m $(addprefix ./,$(addsuffix /...,$(MODULES)))

## lint: gofmt and go vet over every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(addprefix ./,$(addsuffix /...,$(MODULES)))

## modules-standalone: every module builds on its own go.mod, as a team building one service would
modules-standalone:
	@for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./... >/dev/null) || { echo "module $$m does not build alone"; exit 1; }; done

## bench: the benchmarks (figures in README's Performance section)
bench:
	$(GO) test -run x -bench . -benchtime 3x ./services/audit/
	$(GO) test -run x -bench . ./services/audit/internal/chain/

## fmt: format every module
fmt:
	gofmt -w $(MODULES)

## tidy: tidy every module's go.mod
tidy:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

clean:
	rm -rf $(BIN)
