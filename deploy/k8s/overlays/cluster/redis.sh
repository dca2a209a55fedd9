#!/bin/sh
# Starts one node of the cluster. Its identity and the cluster's layout are
# in /data/nodes.conf, on the pod's volume, so a pod that comes back with a
# new address rejoins as the same node; it announces its stable DNS name,
# which clients are told in CLUSTER SLOTS and MOVED answers.
set -eu
cat > /conf/redis.conf <<CONF
include /scripts/redis-settings.conf
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
