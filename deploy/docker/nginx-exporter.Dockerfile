# nginx-prometheus-exporter from Debian's prometheus-nginx-exporter package
# (0.11), a drop-in for the official nginx/nginx-prometheus-exporter image:
# it reads nginx's stub_status page given by --nginx.scrape-uri and serves
# metrics on :9113.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y prometheus-nginx-exporter \
 && rm -rf /var/lib/apt/lists/*
USER nobody
EXPOSE 9113
ENTRYPOINT ["/usr/bin/prometheus-nginx-exporter"]
