# nginx from Debian's nginx-light package (1.22), a drop-in for the official
# nginx image, which the stack mounts its own nginx.conf into. curl is for
# the health check, as in the official image.
ARG BASE
FROM ${BASE}
# The package's own site is removed: a default server listening on :80 must
# not sneak in beside the stack's configuration.
RUN apt-get update \
 && apt-get install -y nginx-light curl \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
