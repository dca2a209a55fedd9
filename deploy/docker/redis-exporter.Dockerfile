# redis_exporter from Debian's prometheus-redis-exporter package (1.45), a
# drop-in for the official oliver006/redis_exporter image: configured by
# REDIS_ADDR and REDIS_PASSWORD in the environment, metrics on :9121. wget
# is for the health check, as in the official image's -alpine variant.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y prometheus-redis-exporter wget \
 && rm -rf /var/lib/apt/lists/*
USER nobody
EXPOSE 9121
ENTRYPOINT ["/usr/bin/prometheus-redis-exporter"]
