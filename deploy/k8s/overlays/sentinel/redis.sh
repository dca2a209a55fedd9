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
include /scripts/redis-settings.conf
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
