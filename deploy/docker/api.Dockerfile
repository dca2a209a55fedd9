# The API image built from source, for machines that can pull the official
# golang image: `docker compose build` uses it. The build context is the
# repository root. Offline, `make images` builds the same image from the
# host's Go toolchain instead (api.local.Dockerfile).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY services/api/go.mod services/api/go.sum ./
RUN go mod download
COPY services/api/ ./
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 GOWORK=off go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/api ./cmd/api

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/api /api
# nobody: the process needs no privilege and no writable file.
USER 65534:65534
EXPOSE 3000
ENTRYPOINT ["/api"]
