#!/bin/sh
# Starts one node of the cluster. Its identity and the cluster's layout are
# in /data/nodes.conf, on the pod's volume, so a pod that comes back with a
# new address rejoins as the same node; it announces its stable DNS name,
# which clients are told in CLUSTER SLOTS and MOVED answers.
set -eu
cat > /conf/redis.conf <<CONF
port 6379
dir /data
appendonly yes
appendfsync everysec
# Within the container's 1 GiB, leaving room for the copy-on-write of an
# AOF rewrite and for replication buffers. Full means writes are refused
# (noeviction): evicting would delete user records, which have no expiry,
# and a replica answers 503 and turns unready rather than losing data.
maxmemory 600mb
maxmemory-policy noeviction
# Session hashes hold a User-Agent of up to 512 bytes; past the default of
# 64 a hash leaves the compact listpack encoding, and a session costs about
# 1.3 KB instead of 0.75 KB (measured: BenchmarkMemory in redisstore).
hash-max-listpack-value 512
requirepass "$REDIS_PASSWORD"
masterauth "$REDIS_PASSWORD"
cluster-enabled yes
cluster-config-file /data/nodes.conf
# A master unreachable this long is failed over to its replica.
cluster-node-timeout 5000
# A dead master stops only its own slots, not the whole cluster, while its
# replica takes over.
cluster-require-full-coverage no
cluster-announce-hostname $(hostname).redis
cluster-preferred-endpoint-type hostname
CONF
exec redis-server /conf/redis.conf
