# Alertmanager from Debian's prometheus-alertmanager package (0.25, with
# amtool), laid out like the official prom/alertmanager image: the same
# entry point arguments, data in /alertmanager, amtool on the PATH;
# wget is for the health check, as in the official (busybox) image.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y prometheus-alertmanager wget \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o nobody -g nogroup -m 0755 /alertmanager
USER nobody
WORKDIR /alertmanager
EXPOSE 9093
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
