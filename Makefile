# sessioncert: every task a developer or CI runs. `make run` and `make test`
# work on a fresh clone with only Go and make; the generator and the linter
# are built from the pinned versions in tools/go.mod.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULE    := github.com/sessioncert/sessioncert
BIN       := $(CURDIR)/bin
SWAGGER   := $(BIN)/swagger
LINTER    := $(BIN)/golangci-lint
PRINCIPAL := $(MODULE)/pkg/auth.Principal

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X $(MODULE)/pkg/version.Version=$(VERSION) \
              -X $(MODULE)/pkg/version.Revision=$(REVISION) \
              -X $(MODULE)/pkg/version.BuildDate=$(BUILD_DATE)

# Generated trees, wiped and rebuilt by `make generate`. The one hand-edited
# file among them, restapi/configure_sessioncert.go, is spared.
GENERATED := models client restapi/operations restapi/doc.go restapi/embedded_spec.go restapi/server.go

.PHONY: all build run test test-unit lint generate verify-generated bench tools clean dev-etcd

all: build

$(SWAGGER): tools/go.mod tools/go.sum
	cd tools && go build -o $(SWAGGER) github.com/go-swagger/go-swagger/cmd/swagger

$(LINTER): tools/go.mod tools/go.sum
	cd tools && go build -o $(LINTER) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

tools: $(SWAGGER) $(LINTER)

build:
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## run: build and start the server on its embedded defaults (data in ./data)
run: build
	@echo "sessioncert-server: https://127.0.0.1:1280 — admin password in ./data/admin-password on first start"
	$(BIN)/sessioncert-server --data-dir ./data

## generate: validate swagger.yml and regenerate the server, models and client
generate: $(SWAGGER)
	$(SWAGGER) validate swagger.yml
	rm -rf $(GENERATED)
	$(SWAGGER) generate server -q -f swagger.yml -t . -A sessioncert -P $(PRINCIPAL) \
		--strict-responders --exclude-main
	$(SWAGGER) generate client -q -f swagger.yml -t . -A sessioncert -P $(PRINCIPAL)
	go build ./models/... ./client/... ./restapi/...

## verify-generated: fail when the generated code differs from swagger.yml
verify-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED) restapi)" ]; then \
		echo "generated code is out of date with swagger.yml; run make generate and commit:"; \
		git status --porcelain -- $(GENERATED) restapi; \
		git diff --stat -- $(GENERATED) restapi; \
		exit 1; \
	fi
	@echo "generated code matches swagger.yml"

## lint: golangci-lint with the checked-in configuration
lint: $(LINTER)
	$(LINTER) run ./...

# TEST_PKGS narrows test-unit, e.g. `make test-unit TEST_PKGS=./test/contract`.
TEST_PKGS ?= ./...

## test-unit: every Go test with the race detector, then the contract
## suite's coverage table (written by the suite, printed even on failure)
test-unit:
	@report=$$(mktemp); trap 'rm -f "$$report"' EXIT; status=0; \
	echo "go test -race -count=1 -timeout 20m $(TEST_PKGS)"; \
	SESSIONCERT_CONTRACT_REPORT="$$report" go test -race -count=1 -timeout 20m $(TEST_PKGS) || status=$$?; \
	if [ -s "$$report" ]; then echo; cat "$$report"; else echo "no contract coverage table was written"; fi; \
	exit $$status

## test: everything CI runs — generated code check, lint, all tests with -race
test: verify-generated lint test-unit

## bench: benchmarks that print figures and ratios measured in one run
bench: build
	go run ./test/bench

## dev-etcd: a one-member etcd on 127.0.0.1:2379 for trying cluster mode
dev-etcd: build
	$(BIN)/sessioncert-devetcd --data-dir ./data-etcd

clean:
	rm -rf $(BIN)
