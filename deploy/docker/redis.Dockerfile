# Redis from Debian's redis-server package (7.0), a drop-in for the official
# redis image: `redis-server` on the PATH, data in /data, redis-cli for the
# health check. BASE is the Debian image build-images.sh makes with
# mmdebstrap.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis -m 0750 /data
# /data belongs to the redis user so that a fresh named volume, which Docker
# seeds from the image, is writable without running as root.
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--dir", "/data"]
