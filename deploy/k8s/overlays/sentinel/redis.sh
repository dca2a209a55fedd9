#!/bin/sh
# Starts one Redis of the StatefulSet as the master or as a replica of the
# current master. The Sentinels know who the master is (after a failover it
# need not be redis-0); when none answers, the set is new and redis-0 is the
# master.
set -eu
self="$(hostname).redis"
master=""
for s in redis-0 redis-1 redis-2; do
  master=$(redis-cli -h "$s.redis" -p 26379 -a "$REDIS_PASSWORD" --no-auth-warning \
    sentinel get-master-addr-by-name sessions 2>/dev/null | head -n 1) || true
  [ -n "$master" ] && break
done
[ -n "$master" ] || master=redis-0.redis

# The configuration is written to memory: the root file system is read-only
# and the password must not be on a command line.
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
# Replicas and Sentinels name each other by the pods' stable DNS names,
# which survive a pod's new address.
replica-announce-ip $self
CONF
if [ "$master" != "$self" ]; then
  echo "replicaof $master 6379" >> /conf/redis.conf
fi
exec redis-server /conf/redis.conf
