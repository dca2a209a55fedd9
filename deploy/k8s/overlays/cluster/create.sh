#!/bin/sh
# Creates the cluster once: waits for the six nodes, and does nothing if
# they already form a cluster (the Job re-run, or pods restarted). CLUSTER
# MEET takes addresses, not names, hence getent.
set -eu
nodes=""
for i in 0 1 2 3 4 5; do
  host="redis-$i.redis"
  until redis-cli -h "$host" ping 2>/dev/null | grep -q PONG; do sleep 2; done
  nodes="$nodes $(getent hosts "$host" | cut -d' ' -f1):6379"
done
known=$(redis-cli -h redis-0.redis cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')
if [ "${known:-1}" -gt 1 ]; then
  echo "cluster exists ($known nodes known)"
  exit 0
fi
# shellcheck disable=SC2086 # one argument per node
redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes
