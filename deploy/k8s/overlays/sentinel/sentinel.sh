#!/bin/sh
# Starts the Sentinel beside one Redis. It monitors the current master (as
# another Sentinel knows it, else redis-0) and finds the other Sentinels and
# the replicas by itself. Sentinel rewrites its file, so it lives in memory.
set -eu
self="$(hostname).redis"
master=""
for s in redis-0 redis-1 redis-2; do
  [ "$s.redis" = "$self" ] && continue
  master=$(redis-cli -h "$s.redis" -p 26379 -a "$REDIS_PASSWORD" --no-auth-warning \
    sentinel get-master-addr-by-name sessions 2>/dev/null | head -n 1) || true
  [ -n "$master" ] && break
done
[ -n "$master" ] || master=redis-0.redis

cat > /conf/sentinel.conf <<CONF
port 26379
requirepass "$REDIS_PASSWORD"
sentinel sentinel-pass "$REDIS_PASSWORD"
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $self
sentinel monitor sessions $master 6379 2
sentinel auth-pass sessions "$REDIS_PASSWORD"
sentinel down-after-milliseconds sessions 5000
sentinel failover-timeout sessions 60000
sentinel parallel-syncs sessions 1
CONF
exec redis-sentinel /conf/sentinel.conf
