#!/usr/bin/env bash
# Builds every image the compose stack needs without a container registry.
#
# One Debian base image comes from mmdebstrap, which builds a root file
# system from the machine's own apt sources (no mirror address is written
# here); `docker import` turns it into an image. Every other Debian image is
# an ordinary Dockerfile `FROM` that base that installs its package with
# apt-get, so Docker's layer cache decides what to rebuild: an unchanged
# Dockerfile on an unchanged base costs nothing. The API image wraps the
# static binary that the host's Go toolchain builds (api.Dockerfile, target
# `prebuilt`). Local images never take an official image's name, so a
# machine that can pull never confuses the two.
#
# Usage: build-images.sh [redis|nginx|prometheus|alertmanager|redis-exporter|nginx-exporter|api]...
#        (default: all)
#
# IMAGE_PREFIX (default redis-session-app) names every image; *_IMAGE
# overrides one. The base image is built when it is missing or its recipe
# (the mmdebstrap options below) changed; FORCE=1 rebuilds the base and
# every image without the layer cache, e.g. to take Debian's latest updates.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
docker_dir="$root/deploy/docker"
build_dir="$docker_dir/.build"

IMAGE_PREFIX=${IMAGE_PREFIX:-redis-session-app}
SUITE=${SUITE:-bookworm}
BASE_IMAGE=${BASE_IMAGE:-$IMAGE_PREFIX/debian:$SUITE}
REDIS_IMAGE=${REDIS_IMAGE:-$IMAGE_PREFIX/redis:$SUITE}
NGINX_IMAGE=${NGINX_IMAGE:-$IMAGE_PREFIX/nginx:$SUITE}
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-$IMAGE_PREFIX/prometheus:$SUITE}
ALERTMANAGER_IMAGE=${ALERTMANAGER_IMAGE:-$IMAGE_PREFIX/alertmanager:$SUITE}
REDIS_EXPORTER_IMAGE=${REDIS_EXPORTER_IMAGE:-$IMAGE_PREFIX/redis-exporter:$SUITE}
NGINX_EXPORTER_IMAGE=${NGINX_EXPORTER_IMAGE:-$IMAGE_PREFIX/nginx-exporter:$SUITE}
API_IMAGE=${API_IMAGE:-$IMAGE_PREFIX/api:dev}
VERSION=${VERSION:-dev}
REVISION=${REVISION:-unknown}
FORCE=${FORCE:-0}

# The base image carries the hash of its recipe, so that a changed recipe
# rebuilds it; the images on top of it need no such label.
recipe_label=org.redis-session-app.recipe

log() { printf 'images: %s\n' "$*" >&2; }

# The base's recipe. Documentation, man pages and translations are a third
# of a small image and nothing in a container reads them; mmdebstrap keeps
# these dpkg and apt options in the image (/etc/dpkg/dpkg.cfg.d,
# /etc/apt/apt.conf.d), so the apt-get installs of the Dockerfiles leave
# them out too and install no recommended packages. The apt settings the
# hook writes apply to those installs only (mmdebstrap needs its downloads):
# no package cache files (80 MB) and no downloaded .deb left behind, as in
# Docker's official Debian images. policy-rc.d stops package scripts from
# starting daemons inside a build, and debconf asks no questions.
base_opts=(
	--variant=minbase
	--dpkgopt='path-exclude=/usr/share/doc/*'
	--dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-include=/usr/share/locale/locale.alias'
	--aptopt='APT::Install-Recommends "false"'
	--customize-hook='printf "APT::Keep-Downloaded-Packages \"false\";\nDir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\n" >"$1"/etc/apt/apt.conf.d/docker-clean'
	--customize-hook='printf "#!/bin/sh\nexit 101\n" >"$1"/usr/sbin/policy-rc.d && chmod 0755 "$1"/usr/sbin/policy-rc.d'
	--customize-hook='echo "debconf debconf/frontend select Noninteractive" | chroot "$1" debconf-set-selections'
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
)

# ensure_mmdebstrap installs mmdebstrap when the base must be built and it
# is missing.
ensure_mmdebstrap() {
	command -v mmdebstrap >/dev/null 2>&1 && return
	if [ "$(id -u)" -ne 0 ]; then
		log "mmdebstrap is missing; install it as root: apt-get install -y mmdebstrap"
		return 1
	fi
	log "installing mmdebstrap"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
}

# replaced_base is the image a rebuilt base replaced; main removes it once
# the images on top of it have been rebuilt.
replaced_base=

build_base() {
	local hash got
	hash=$(printf '%s\n' "$SUITE" "${base_opts[@]}" | sha256sum | cut -c1-16)
	got=$(docker image inspect -f "{{index .Config.Labels \"$recipe_label\"}}" "$BASE_IMAGE" 2>/dev/null || true)
	if [ "$FORCE" != 1 ] && [ "$got" = "$hash" ]; then
		return
	fi
	ensure_mmdebstrap
	replaced_base=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
	log "building $BASE_IMAGE from Debian $SUITE with mmdebstrap"
	local start=$SECONDS logfile="$build_dir/base.log"
	if ! mmdebstrap --logfile="$logfile" "${base_opts[@]}" "$SUITE" - </dev/null |
		docker import --change "LABEL $recipe_label=$hash" --change 'CMD ["bash"]' \
			- "$BASE_IMAGE" >/dev/null; then
		log "building $BASE_IMAGE failed; the end of $logfile:"
		tail -n 30 "$logfile" >&2
		return 1
	fi
	log "built $BASE_IMAGE in $((SECONDS - start)) s"
}

# docker_build IMAGE DOCKERFILE CONTEXT [docker build options...] builds
# one image. CONTEXT "-" means none (the Dockerfile copies nothing). The
# image it replaces would linger untagged, so it is removed; one that a
# container still uses stays (rmi refuses).
docker_build() {
	local image=$1 dockerfile=$2 context=$3
	shift 3
	local opts=(--quiet -t "$image" "$@")
	[ "$FORCE" != 1 ] || opts+=(--no-cache)
	local previous logfile start=$SECONDS
	previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
	logfile="$build_dir/$(printf '%s' "$image" | tr -c 'A-Za-z0-9.-' _).log"
	# The legacy builder warns about its deprecation on every run, so its
	# output is shown only when the build fails.
	if [ "$context" = - ]; then
		docker build "${opts[@]}" - <"$dockerfile" >"$logfile" 2>&1
	else
		docker build "${opts[@]}" -f "$dockerfile" "$context" >"$logfile" 2>&1
	fi || {
		log "building $image failed:"
		cat "$logfile" >&2
		return 1
	}
	local now
	now=$(docker image inspect -f '{{.Id}}' "$image")
	if [ "$previous" = "$now" ]; then
		log "$image is up to date"
		return
	fi
	if [ -n "$previous" ]; then
		docker rmi "$previous" >/dev/null 2>&1 || true
	fi
	log "built $image in $((SECONDS - start)) s"
}

# debian_image NAME IMAGE: NAME.Dockerfile on top of the base image.
debian_image() {
	docker_build "$2" "$docker_dir/$1.Dockerfile" - --build-arg "BASE=$BASE_IMAGE"
}

build_api() {
	local ctx="$build_dir/api"
	mkdir -p "$ctx"
	log "building the API binary ($VERSION, $REVISION)"
	# The toolchain go.work names, also when this script runs on its own
	# on a machine whose GOTOOLCHAIN is local (make exports it already).
	(cd "$root/services/api" && CGO_ENABLED=0 GOTOOLCHAIN="$(sed -n 's/^toolchain //p' "$root/go.work")" go build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION -X main.revision=$REVISION" \
		-o "$ctx/api" ./cmd/api)
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
	docker_build "$API_IMAGE" "$docker_dir/api.Dockerfile" "$ctx" --target prebuilt \
		--label "org.opencontainers.image.version=$VERSION" \
		--label "org.opencontainers.image.revision=$REVISION"
}

# image_of NAME: the image variable of one Debian image.
image_of() {
	case $1 in
	redis) echo "$REDIS_IMAGE" ;;
	nginx) echo "$NGINX_IMAGE" ;;
	prometheus) echo "$PROMETHEUS_IMAGE" ;;
	alertmanager) echo "$ALERTMANAGER_IMAGE" ;;
	redis-exporter) echo "$REDIS_EXPORTER_IMAGE" ;;
	nginx-exporter) echo "$NGINX_EXPORTER_IMAGE" ;;
	*) return 1 ;;
	esac
}

main() {
	if ! docker info >/dev/null 2>&1; then
		log "cannot reach the Docker Engine (is it running, may this user use it?)"
		exit 1
	fi
	local targets=("$@")
	[ ${#targets[@]} -gt 0 ] ||
		targets=(redis nginx prometheus alertmanager redis-exporter nginx-exporter api)
	local t debian=()
	for t in "${targets[@]}"; do
		if [ "$t" = api ]; then
			continue
		fi
		image_of "$t" >/dev/null || {
			log "unknown image $t (want redis, nginx, prometheus, alertmanager, redis-exporter, nginx-exporter or api)"
			exit 2
		}
		debian+=("$t")
	done
	mkdir -p "$build_dir"
	if [ ${#debian[@]} -gt 0 ]; then
		build_base
		# The installs spend their time downloading, so they run side by side.
		local pids=() failed=0 i
		for t in "${debian[@]}"; do
			debian_image "$t" "$(image_of "$t")" &
			pids+=($!)
		done
		for i in "${!pids[@]}"; do
			wait "${pids[$i]}" || { log "the ${debian[$i]} image failed"; failed=1; }
		done
		[ "$failed" = 0 ] || exit 1
		# Refused while an image not rebuilt here still uses it.
		if [ -n "$replaced_base" ]; then
			docker rmi "$replaced_base" >/dev/null 2>&1 || true
		fi
	fi
	for t in "${targets[@]}"; do
		[ "$t" != api ] || build_api
	done
}

main "$@"
