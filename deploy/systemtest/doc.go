// Package systemtest proves the architecture the service claims: any
// replica serves any user and no replica holds state. Its tests start the
// whole system with testcontainers-go (nginx and three API replicas on an
// edge network, the replicas and Redis on a data network) from the local
// images of `make images`, and break it: restarts, kills, a Redis outage,
// network partitions, expiry, concurrency. See the README's "System test
// suite" for what each case proves and how to run one.
package systemtest
