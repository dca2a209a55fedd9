# The API image, one recipe for both ways of getting the binary:
#
#   online  (docker compose up --build): target `source` compiles it in the
#           official golang image; the build context is the repository root.
#   offline (make images): target `prebuilt` takes the static binary the
#           host's Go toolchain built, from the context build-images.sh
#           prepares (deploy/docker/.build/api: the binary and the CA roots).
#
# The legacy builder (Docker without BuildKit, ours) builds every stage up to
# its target, so `prebuilt` comes before the golang stage and never pulls it;
# BuildKit builds only the stages a target needs.

# What both targets share. FROM scratch: one static binary, nothing else.
FROM scratch AS runtime
# nobody: the process needs no privilege and no writable file.
USER 65534:65534
EXPOSE 3000
# No HEALTHCHECK here: docker-compose.yml runs `/api -healthcheck` (this
# image has no shell or curl), and Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["/api"]

FROM runtime AS prebuilt
# CA roots let REDIS_TLS=true verify a managed Redis's certificate.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY api /api

FROM golang:1.27.3-bookworm AS build
WORKDIR /src
COPY services/api/go.mod services/api/go.sum ./
RUN go mod download
COPY services/api/ ./
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 GOWORK=off go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/api ./cmd/api

FROM runtime AS source
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/api /api
