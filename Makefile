# The one entry point that people and CI share. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Evaluated once, so that every image and binary of one make run carries the
# same labels even when a commit lands meanwhile.
VERSION  := $(or $(VERSION),$(shell git describe --tags --always --dirty 2>/dev/null || echo dev))
REVISION := $(or $(REVISION),$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown))
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)

# Go 1.27 for every go command a target runs, tests' own `go build`
# included. The machines set GOTOOLCHAIN=local, which ignores the toolchain
# line of go.mod and go.work, so it is exported here; the go command fetches
# the toolchain from the module proxy once (about 76 MB) and caches it.
export GOTOOLCHAIN := go1.27.3

API_DIR        := services/api
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# An execution count, not a duration: a duration races Go 1.26's fuzzing
# coordinator at its deadline and can fail with "context deadline exceeded"
# and no failing input (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME       ?= 10000x
GO_MODULES     := $(API_DIR) loadtest deploy/e2e deploy/k8s deploy/systemtest

.PHONY: build test lint test-api fuzz run deps loadtest bench bench-deps bench-images \
        images up down down-volumes logs ps redis-cli test-deploy test-k8s e2e

## build: compile the API binary into bin/api
build:
	cd $(API_DIR) && CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o ../../bin/api ./cmd/api

## test: everything CI checks — lint, unit and real-Redis tests, fuzz seeds, Kubernetes manifests, deploy checks, the compose smoke test and the system test suite
test: lint test-api fuzz test-k8s test-deploy e2e

## deps: install the Debian packages the tests need when they are missing
deps:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light && \
		  { service nginx stop >/dev/null 2>&1 || true; }; }

## lint: gofmt, go vet and staticcheck on every module
lint:
	@for m in $(GO_MODULES); do \
		[ -f $$m/go.mod ] || continue; \
		echo "gofmt $$m"; unformatted=$$(gofmt -l $$m); [ -z "$$unformatted" ] || { echo "not gofmt'ed: $$unformatted" >&2; exit 1; }; \
		echo "vet $$m"; (cd $$m && go vet ./...); \
		echo "staticcheck $$m"; (cd $$m && go run $(STATICCHECK) ./...); \
	done

## test-api: the service's tests with the race detector, against a real redis-server the tests start, and the load generator's own tests
test-api: deps
	cd $(API_DIR) && go test -race -count=1 -timeout 10m ./...
	cd loadtest && go test -count=1 ./...

## fuzz: run every fuzz target of the service briefly (FUZZTIME executions each)
fuzz:
	@cd $(API_DIR) && for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		dir=$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "fuzz $$dir $$t"; \
			go test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

## test-k8s: build every kustomization of deploy/k8s offline and check its manifests strictly against the Kubernetes API types and the service
test-k8s:
	cd deploy/k8s && go test -count=1 ./...

## run: one replica on 127.0.0.1:3000 against the Redis at REDIS_ADDR (default localhost:6379)
run:
	cd $(API_DIR) && COOKIE_SECURE=$${COOKIE_SECURE:-false} go run -ldflags "$(LDFLAGS)" ./cmd/api -host 127.0.0.1

## loadtest: load the running stack (make up) through nginx as users do and check every answer; LOAD_SCENARIO read|login|mixed|churn, LOAD_RATE req/s (0 = closed model of LOAD_WORKERS), LOAD_DURATION, LOAD_ARGS for more flags (cd loadtest && go run . -h)
LOAD_SCENARIO ?= read
LOAD_DURATION ?= 10s
LOAD_RATE     ?= 0
LOAD_WORKERS  ?= 32
LOAD_ARGS     ?=
loadtest:
	cd loadtest && go run . -target http://127.0.0.1:$(NGINX_PORT) -scenario $(LOAD_SCENARIO) -duration $(LOAD_DURATION) \
		$$(if [ "$(LOAD_RATE)" = 0 ]; then echo -workers $(LOAD_WORKERS); else echo -rate $(LOAD_RATE); fi) $(LOAD_ARGS)

## bench: measure the system as host processes on loopback (redis-server, the replicas, nginx with nginx.conf) against the machine's ceilings, and, where Docker runs, the compose stack (built with make images, started under a project of its own, taken down after); writes loadtest/results/DATE.{json,md} and the README's table. BENCH_DURATION per load; BENCH_ARGS for more (cd loadtest && go run ./bench -h)
BENCH_DURATION ?= 10s
BENCH_ARGS     ?=
bench: bench-deps bench-images
	cd loadtest && $(DEPLOY_ENV) go run ./bench -repo .. -out results -readme -duration $(BENCH_DURATION) \
		-compose "$$(docker info >/dev/null 2>&1 && echo '$(COMPOSE)')" $(BENCH_ARGS)

# The compose stack's images, where Docker runs; without it make bench
# measures the host processes only.
bench-images:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory images; \
	else echo "bench: Docker does not run here: no figure for the compose stack" >&2; fi

## bench-deps: install the Debian packages make bench runs when they are missing
bench-deps:
	@command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v nginx >/dev/null && command -v wrk >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools nginx-light wrk && \
		  { service nginx stop; service redis-server stop; } >/dev/null 2>&1 || true; }

# ---- deployment (docker-compose stack, offline images) ----
# With a registry, `docker compose up --build` needs none of this: it pulls
# the official images and builds the API from deploy/docker/api.Dockerfile.

# Whichever Compose exists: the v2 plugin, else docker-compose 1.29.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# Local images built without a registry (deploy/docker/build-images.sh).
# They never carry an official image's name; plain `docker compose up`
# without these variables uses the official images instead.
IMAGE_PREFIX         ?= redis-session-app
REDIS_IMAGE          ?= $(IMAGE_PREFIX)/redis:bookworm
NGINX_IMAGE          ?= $(IMAGE_PREFIX)/nginx:bookworm
PROMETHEUS_IMAGE     ?= $(IMAGE_PREFIX)/prometheus:bookworm
ALERTMANAGER_IMAGE   ?= $(IMAGE_PREFIX)/alertmanager:bookworm
REDIS_EXPORTER_IMAGE ?= $(IMAGE_PREFIX)/redis-exporter:bookworm
NGINX_EXPORTER_IMAGE ?= $(IMAGE_PREFIX)/nginx-exporter:bookworm
API_IMAGE            ?= $(IMAGE_PREFIX)/api:dev
NGINX_PORT           ?= 8080
PROMETHEUS_PORT      ?= 9090
ALERTMANAGER_PORT    ?= 9093
UP_TIMEOUT           ?= 90

empty :=
space := $(empty) $(empty)

DEPLOY_ENV = IMAGE_PREFIX=$(IMAGE_PREFIX) REDIS_IMAGE=$(REDIS_IMAGE) NGINX_IMAGE=$(NGINX_IMAGE) \
	PROMETHEUS_IMAGE=$(PROMETHEUS_IMAGE) ALERTMANAGER_IMAGE=$(ALERTMANAGER_IMAGE) \
	REDIS_EXPORTER_IMAGE=$(REDIS_EXPORTER_IMAGE) NGINX_EXPORTER_IMAGE=$(NGINX_EXPORTER_IMAGE) \
	API_IMAGE=$(API_IMAGE) NGINX_PORT=$(NGINX_PORT) PROMETHEUS_PORT=$(PROMETHEUS_PORT) \
	ALERTMANAGER_PORT=$(ALERTMANAGER_PORT) VERSION=$(VERSION) REVISION=$(REVISION)

## images: build every image the stack needs, without a registry (one mmdebstrap base, then Dockerfiles; Docker's layer cache skips what has not changed)
images:
	$(DEPLOY_ENV) deploy/docker/build-images.sh

# The local images' names and the build labels (VERSION, REVISION, which
# are the API image's build arguments, so Compose 1.29 counts them in a
# container's configuration), kept in .env (Compose reads it beside
# docker-compose.yml), so that plain `docker compose` commands, such as
# the runbook's in deploy/README.md, use the same images as make up and
# recreate nothing that make up started, instead of turning to the
# official images, which no registry here serves. Other lines of .env stay
# as they are.
STACK_VARS := REDIS_IMAGE NGINX_IMAGE PROMETHEUS_IMAGE ALERTMANAGER_IMAGE REDIS_EXPORTER_IMAGE NGINX_EXPORTER_IMAGE API_IMAGE VERSION REVISION

## up: build images when needed, record their names and the build labels in .env, start the stack, wait until nginx answers, print the URLs
up: images
	@command -v curl >/dev/null || { echo "make up waits for nginx with curl: apt-get install -y curl" >&2; exit 1; }
	@{ [ -f .env ] && grep -v -E '^($(subst $(space),|,$(STACK_VARS)))=' .env || true; \
	   $(foreach v,$(STACK_VARS),echo '$(v)=$($(v))';) } > .env.new && mv .env.new .env
	$(DEPLOY_ENV) $(COMPOSE) up -d --no-build
	@echo "waiting up to $(UP_TIMEOUT) s for http://127.0.0.1:$(NGINX_PORT)/healthz"
	@for i in $$(seq $(UP_TIMEOUT)); do \
		if curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:$(NGINX_PORT)/healthz 2>/dev/null; then \
			echo "API (through nginx): http://127.0.0.1:$(NGINX_PORT)"; \
			echo "Prometheus:          http://127.0.0.1:$(PROMETHEUS_PORT)"; \
			echo "Alertmanager:        http://127.0.0.1:$(ALERTMANAGER_PORT)"; \
			exit 0; \
		fi; \
		sleep 1; \
	done; \
	echo "nginx did not answer /healthz within $(UP_TIMEOUT) s; see make logs" >&2; \
	$(DEPLOY_ENV) $(COMPOSE) ps >&2; exit 1

## down: stop and remove the stack's containers (the Redis and Prometheus volumes stay)
down:
	$(DEPLOY_ENV) $(COMPOSE) down --remove-orphans

## down-volumes: like down, and delete the volumes too (all users and sessions)
down-volumes:
	$(DEPLOY_ENV) $(COMPOSE) down --remove-orphans --volumes

## logs: follow the stack's logs
logs:
	$(DEPLOY_ENV) $(COMPOSE) logs -f --tail=100

## redis-cli: an interactive redis-cli in the stack's Redis container (authenticated)
redis-cli:
	$(DEPLOY_ENV) $(COMPOSE) exec redis redis-cli

## ps: list the stack's containers
ps:
	$(DEPLOY_ENV) $(COMPOSE) ps

# promtool and amtool from their images, so no host package is needed.
PROMTOOL = docker run --rm --network none -v "$(CURDIR)/deploy/prometheus:/etc/prometheus:ro" -w /etc/prometheus \
	--entrypoint promtool $(PROMETHEUS_IMAGE)
AMTOOL = docker run --rm --network none -v "$(CURDIR)/deploy/prometheus:/etc/alertmanager:ro" -w /etc/alertmanager \
	--entrypoint amtool $(ALERTMANAGER_IMAGE)

# The routing tree, as "receiver label=value...": each line must reach that receiver.
ALERT_ROUTES = \
	"critical severity=critical alertname=RedisDown" \
	"warning severity=warning alertname=ApiReplicaDown" \
	"heartbeat severity=none alertname=Watchdog" \
	"warning alertname=Unlabelled"

## test-deploy: promtool checks of the Prometheus config and alert rules, amtool checks of the Alertmanager config and its routes, then the compose smoke test (deploy/e2e)
test-deploy: images
	$(PROMTOOL) check config prometheus.yml
	$(PROMTOOL) test rules rules_test.yml
	$(AMTOOL) check-config alertmanager.yml
	@for r in $(ALERT_ROUTES); do \
		set -- $$r; want=$$1; shift; \
		echo "amtool config routes test $$* -> $$want"; \
		$(AMTOOL) config routes test --config.file=alertmanager.yml --verify.receivers="$$want" "$$@" 2>/dev/null >/dev/null || \
			{ echo "alerts with $$* do not reach receiver $$want" >&2; exit 1; }; \
	done
	cd deploy/e2e && $(DEPLOY_ENV) go test -count=1 -timeout 15m ./...

## e2e: the system test suite (deploy/systemtest, testcontainers-go): every case with its result; RUN=Partitions (or RUN='Partitions|UsersAreIsolated') runs only those
# testcontainers-go reads both variables once per process: Ryuk, its
# reaper, is an image no registry can give us here (the suite removes what
# it made itself), and the host override keeps every request on 127.0.0.1.
# Containers' logs of a failing case land under deploy/systemtest/_artifacts.
E2E_TIMEOUT ?= 15m
e2e: images
	cd deploy/systemtest && $(DEPLOY_ENV) \
		TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=localhost \
		go test -v -count=1 -timeout $(E2E_TIMEOUT) -artifacts \
		$(if $(RUN),-run 'TestSystem/^($(RUN))$$') ./...
