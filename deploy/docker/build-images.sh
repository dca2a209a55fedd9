#!/usr/bin/env bash
# Builds every image the compose stack needs without a container registry.
#
# Redis, nginx and Prometheus come from Debian packages: mmdebstrap builds a
# root file system from the machine's apt sources and `docker import` turns
# it into an image. The API image wraps the static binary that the host's Go
# toolchain builds. Local images never take an official image's name, so a
# machine that can pull never confuses the two.
#
# Usage: build-images.sh [redis|nginx|prometheus|api]...   (default: all)
#
# An image that exists and was built from the same recipe is kept; a recipe
# change (packages, hooks, metadata) is detected through a label and rebuilds
# it. The API image is rebuilt every time: it takes a few seconds and its
# source changes all the time. FORCE=1 rebuilds everything.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build_dir="$root/deploy/docker/.build"

REDIS_IMAGE=${REDIS_IMAGE:-redis-session-app/redis:bookworm}
NGINX_IMAGE=${NGINX_IMAGE:-redis-session-app/nginx:bookworm}
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-redis-session-app/prometheus:bookworm}
API_IMAGE=${API_IMAGE:-redis-session-app/api:dev}
VERSION=${VERSION:-dev}
REVISION=${REVISION:-unknown}
SUITE=${SUITE:-bookworm}
FORCE=${FORCE:-0}

recipe_label=org.redis-session-app.recipe

log() { printf 'images: %s\n' "$*" >&2; }

# Documentation, man pages and translations are a third of a small image and
# nothing in a container reads them.
slim_opts=(
	--variant=minbase
	--dpkgopt='path-exclude=/usr/share/doc/*'
	--dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-include=/usr/share/locale/locale.alias'
	--aptopt='APT::Install-Recommends "false"'
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
)

# ensure_mmdebstrap installs mmdebstrap when an image must be built and it
# is missing. The images build in parallel, so the check and the install
# happen under a lock: only the first build installs.
ensure_mmdebstrap() {
	mkdir -p "$build_dir"
	(
		flock 9
		command -v mmdebstrap >/dev/null 2>&1 && exit 0
		if [ "$(id -u)" -ne 0 ]; then
			log "mmdebstrap is missing; install it as root: apt-get install -y mmdebstrap"
			exit 1
		fi
		log "installing mmdebstrap"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
	) 9>"$build_dir/.apt.lock"
}

# up_to_date IMAGE HASH: the image exists and carries the recipe hash.
up_to_date() {
	local got
	got=$(docker image inspect -f "{{index .Config.Labels \"$recipe_label\"}}" "$1" 2>/dev/null) || return 1
	[ "$got" = "$2" ]
}

# debian_image IMAGE PACKAGES HOOK CHANGE...: a Debian root file system with
# PACKAGES, customized by the shell command HOOK (run with the root file
# system's path as $1), imported with the Dockerfile CHANGE instructions.
debian_image() {
	local image=$1 packages=$2 hook=$3
	shift 3
	local hash
	hash=$(printf '%s\n' "$SUITE" "$packages" "$hook" "$@" "${slim_opts[@]}" | sha256sum | cut -c1-16)
	if [ "$FORCE" != 1 ] && up_to_date "$image" "$hash"; then
		log "$image is up to date"
		return
	fi
	ensure_mmdebstrap
	local changes=(--change "LABEL $recipe_label=$hash")
	local c
	for c in "$@"; do changes+=(--change "$c"); done
	log "building $image from Debian $SUITE ($packages)"
	local start=$SECONDS logfile
	mkdir -p "$build_dir"
	logfile="$build_dir/$(printf '%s' "$image" | tr -c 'A-Za-z0-9.-' _).log"
	if ! mmdebstrap --logfile="$logfile" "${slim_opts[@]}" --include="$packages" \
		--customize-hook="$hook" "$SUITE" - </dev/null |
		docker import "${changes[@]}" - "$image" >/dev/null; then
		log "building $image failed; the end of $logfile:"
		tail -n 30 "$logfile" >&2
		return 1
	fi
	log "built $image in $((SECONDS - start)) s"
}

build_redis() {
	# /data belongs to the redis user so that a fresh named volume, which
	# Docker seeds from the image, is writable without running as root.
	debian_image "$REDIS_IMAGE" redis-server \
		'chroot "$1" install -d -o redis -g redis -m 0750 /data' \
		'USER redis' 'WORKDIR /data' 'EXPOSE 6379' \
		'CMD ["redis-server", "--dir", "/data"]'
}

build_nginx() {
	# The package's own site would shadow nothing (the stack mounts its own
	# nginx.conf), but a default server listening on :80 must not sneak in.
	debian_image "$NGINX_IMAGE" nginx-light \
		'rm -f "$1"/etc/nginx/sites-enabled/default' \
		'EXPOSE 8080' \
		'CMD ["nginx", "-g", "daemon off;"]'
}

build_prometheus() {
	# Same entry point and data directory as the official image, so the
	# compose file passes the same flags to either. The web UI needs only
	# one of moment-timezone's files; its full data set is 210 MB.
	debian_image "$PROMETHEUS_IMAGE" prometheus \
		'chroot "$1" install -d -o nobody -g nogroup -m 0755 /prometheus && rm -rf "$1"/usr/share/javascript/moment-timezone/data' \
		'USER nobody' 'WORKDIR /prometheus' 'EXPOSE 9090' \
		'ENTRYPOINT ["/usr/bin/prometheus"]' \
		'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

build_api() {
	local ctx="$build_dir/api"
	mkdir -p "$ctx"
	log "building the API binary ($VERSION, $REVISION)"
	(cd "$root/services/api" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION -X main.revision=$REVISION" \
		-o "$ctx/api" ./cmd/api)
	# CA roots let REDIS_TLS=true verify a managed Redis's certificate.
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
	local previous
	previous=$(docker image inspect -f '{{.Id}}' "$API_IMAGE" 2>/dev/null || true)
	# The legacy builder warns about its deprecation on every run; its
	# output is shown only when the build fails.
	if ! docker build --quiet -f "$root/deploy/docker/api.local.Dockerfile" \
		--label "org.opencontainers.image.version=$VERSION" \
		--label "org.opencontainers.image.revision=$REVISION" \
		-t "$API_IMAGE" "$ctx" >"$build_dir/api-image.log" 2>&1; then
		cat "$build_dir/api-image.log" >&2
		return 1
	fi
	# The image it replaces would linger untagged; a container still
	# running it keeps it (rmi refuses).
	if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$API_IMAGE")" ]; then
		docker rmi "$previous" >/dev/null 2>&1 || true
	fi
	log "built $API_IMAGE"
}

main() {
	if ! docker info >/dev/null 2>&1; then
		log "cannot reach the Docker Engine (is it running, may this user use it?)"
		exit 1
	fi
	local targets=("$@")
	[ ${#targets[@]} -gt 0 ] || targets=(redis nginx prometheus api)
	local t pids=() names=() failed=0 i
	for t in "${targets[@]}"; do
		case $t in
		redis | nginx | prometheus) ;;
		api) continue ;;
		*) log "unknown image $t (want redis, nginx, prometheus or api)"; exit 2 ;;
		esac
		# The Debian images spend their time downloading, so they build side
		# by side.
		"build_$t" &
		pids+=($!) names+=("$t")
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { log "the ${names[$i]} image failed"; failed=1; }
	done
	[ "$failed" = 0 ] || exit 1
	for t in "${targets[@]}"; do
		[ "$t" != api ] || build_api
	done
}

main "$@"
