# The one entry point that people and CI share. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)

API_DIR        := services/api
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME       ?= 5s
GO_MODULES     := $(API_DIR) deploy/e2e

.PHONY: build test lint test-api fuzz run deps \
        images up down logs ps test-deploy

## build: compile the API binary into bin/api
build:
	cd $(API_DIR) && CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o ../../bin/api ./cmd/api

## test: everything CI checks — lint, unit and real-Redis tests, fuzz seeds, deploy checks and the compose smoke test
test: lint test-api fuzz test-deploy

## deps: install the Debian packages the tests need when they are missing
deps:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

## lint: go vet and staticcheck on every module
lint:
	@for m in $(GO_MODULES); do \
		[ -f $$m/go.mod ] || continue; \
		echo "vet $$m"; (cd $$m && go vet ./...); \
		echo "staticcheck $$m"; (cd $$m && go run $(STATICCHECK) ./...); \
	done

## test-api: the service's tests, against a real redis-server the tests start
test-api: deps
	cd $(API_DIR) && go test -count=1 -timeout 10m ./...

## fuzz: run every fuzz target of the service briefly (FUZZTIME each)
fuzz:
	@cd $(API_DIR) && for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		dir=$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "fuzz $$dir $$t"; \
			go test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

## run: one replica on :3000 against the Redis at REDIS_ADDR (default localhost:6379)
run:
	cd $(API_DIR) && COOKIE_SECURE=$${COOKIE_SECURE:-false} go run -ldflags "$(LDFLAGS)" ./cmd/api

# ---- deployment (docker-compose stack, offline images) ----

## images: build every image the stack needs, without a registry
images:
	@echo "images: not yet implemented"

## up: build images when needed and start the stack
up:
	@echo "up: not yet implemented"

## down: stop the stack
down:
	@echo "down: not yet implemented"

## logs: follow the stack's logs
logs:
	@echo "logs: not yet implemented"

## ps: list the stack's containers
ps:
	@echo "ps: not yet implemented"

## test-deploy: promtool and nginx checks and the compose smoke test
test-deploy:
	@echo "test-deploy: not yet implemented"
