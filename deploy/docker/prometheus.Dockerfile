# Prometheus from Debian's prometheus package (2.42, with promtool), with the
# official image's entry point and data directory, so the compose file
# passes the same flags to either. wget is for the health check, as in the
# official (busybox) image.
ARG BASE
FROM ${BASE}
# The classic web UI needs only one of moment-timezone's files; its full
# data set is 210 MB.
RUN apt-get update \
 && apt-get install -y prometheus wget \
 && rm -rf /var/lib/apt/lists/* /usr/share/javascript/moment-timezone/data \
 && install -d -o nobody -g nogroup -m 0755 /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
