# The API image built offline: the host's static binary (CGO_ENABLED=0),
# nothing else. build-images.sh prepares the context (the binary and the CA
# roots) under deploy/docker/.build/api. For a build from source, with a
# registry at hand, see api.Dockerfile.
#
# No HEALTHCHECK: the image has no program to run one with. Probe
# GET /healthz (liveness) and GET /readyz (readiness) over HTTP instead, as
# nginx's passive checks, Prometheus's `up` and Kubernetes probes do.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY api /api
USER 65534:65534
EXPOSE 3000
ENTRYPOINT ["/api"]
