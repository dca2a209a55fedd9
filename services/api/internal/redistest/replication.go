package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// failoverTimeout bounds how long the helpers below wait for Redis to form a
// cluster, for a replica to catch up and for a failover to finish.
const failoverTimeout = 30 * time.Second

// SentinelOptions configures the Sentinels of StartSentinels.
type SentinelOptions struct {
	// Quorum is how many Sentinels must agree that the master is down; one
	// when zero.
	Quorum int
	// DownAfter is how long the master must not answer before a Sentinel
	// thinks it down; Sentinel's default (30 s) when zero.
	DownAfter time.Duration
}

// config is a Sentinel's configuration file monitoring host:port.
func (o SentinelOptions) config(host, port string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sentinel monitor %s %s %s %d\n", SentinelMasterName, host, port, max(o.Quorum, 1))
	if o.DownAfter > 0 {
		fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", SentinelMasterName, o.DownAfter.Milliseconds())
		// A failover that stalls is tried again after twice this; keep it
		// short so that a test sees the outcome quickly.
		fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", SentinelMasterName, 10*o.DownAfter.Milliseconds())
	}
	return b.String()
}

// StartReplica runs a redis-server that replicates master and waits until
// it has caught up with it.
func StartReplica(t testing.TB, master *Server) *Server {
	t.Helper()
	host, port := master.hostPort()
	r := startServer(t, &Server{t: t, dir: t.TempDir(), args: []string{"--replicaof", host, port}})
	r.WaitInSync(t)
	return r
}

// StartSentinels runs n Sentinels that monitor master with o.
func StartSentinels(t testing.TB, master *Server, n int, o SentinelOptions) []*Server {
	t.Helper()
	var out []*Server
	for range n {
		out = append(out, startServer(t, &Server{t: t, dir: t.TempDir(), master: master.Addr(), sentinel: o}))
	}
	return out
}

// Cluster is a Redis Cluster of redis-server processes on loopback, each
// master with one replica.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
}

// StartReplicatedCluster runs 2×masters nodes with the given
// cluster-node-timeout, joins them with `redis-cli --cluster create
// --cluster-replicas 1` (as an operator would), and waits until every node
// sees the cluster ok and every replica has caught up. Slots of a dead
// master are not served by the other masters' nodes either way, but the
// other slots stay served (cluster-require-full-coverage no, as a
// deployment should set it).
func StartReplicatedCluster(t testing.TB, masters int, nodeTimeout time.Duration) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found on PATH (it comes with redis-server): %v", err)
	}
	c := &Cluster{t: t}
	for range 2 * masters {
		c.Nodes = append(c.Nodes, startServer(t, &Server{t: t, dir: t.TempDir(), args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-announce-ip", "127.0.0.1",
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
			"--cluster-require-full-coverage", "no",
		}}))
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(t)
	return c
}

// Addrs lists the addresses of every node.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// waitHealthy waits until every running node reports the cluster ok and
// sees the same masters, and every replica has caught up with its master.
func (c *Cluster) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(failoverTimeout)
	for {
		ok := true
		for _, n := range c.Nodes {
			info, err := n.Do(t, "CLUSTER", "INFO")
			text, _ := info.(string)
			if err != nil || !strings.Contains(text, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok on every node within %v", failoverTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range c.Nodes {
		if n.Role(t) == "slave" {
			n.WaitInSync(t)
		}
	}
}

// MasterOf returns the node that serves key's slot, as the node that
// answers CLUSTER KEYSLOT and CLUSTER SLOTS sees it.
func (c *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		slot, err := n.Do(t, "CLUSTER", "KEYSLOT", key)
		if err != nil {
			continue
		}
		ranges, err := n.Do(t, "CLUSTER", "SLOTS")
		if err != nil {
			continue
		}
		list, _ := ranges.([]any)
		for _, r := range list {
			entry, _ := r.([]any)
			if len(entry) < 3 {
				continue
			}
			lo, _ := entry[0].(int64)
			hi, _ := entry[1].(int64)
			if s, _ := slot.(int64); s < lo || s > hi {
				continue
			}
			master, _ := entry[2].([]any)
			if len(master) < 2 {
				continue
			}
			port, _ := master[1].(int64)
			for _, m := range c.Nodes {
				if m.port == int(port) {
					return m
				}
			}
		}
	}
	t.Fatalf("no running node knows the master of %q", key)
	return nil
}

// ReplicaOf returns the node that replicates master.
func (c *Cluster) ReplicaOf(t testing.TB, master *Server) *Server {
	t.Helper()
	for _, n := range c.Nodes {
		if n != master && n.running() && n.Role(t) == "slave" && n.masterPort(t) == master.port {
			return n
		}
	}
	t.Fatalf("no replica of %s", master.Addr())
	return nil
}

// Do runs one command on the server on a connection of its own.
func (s *Server) Do(t testing.TB, args ...any) (any, error) {
	t.Helper()
	return s.do(t, args...)
}

// Role returns "master", "slave" or "sentinel" as ROLE answers it, or "" if
// the server does not answer.
func (s *Server) Role(t testing.TB) string {
	t.Helper()
	v, err := s.do(t, "ROLE")
	if err != nil {
		return ""
	}
	list, _ := v.([]any)
	if len(list) == 0 {
		return ""
	}
	role, _ := list[0].(string)
	return role
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (s *Server) hostPort() (host, port string) {
	return "127.0.0.1", strconv.Itoa(s.port)
}

// replication returns the fields of INFO replication.
func (s *Server) replication(t testing.TB) map[string]string {
	t.Helper()
	v, err := s.do(t, "INFO", "replication")
	if err != nil {
		return nil
	}
	text, _ := v.(string)
	fields := map[string]string{}
	for line := range strings.SplitSeq(text, "\r\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			fields[k] = val
		}
	}
	return fields
}

func (s *Server) masterPort(t testing.TB) int {
	t.Helper()
	port, _ := strconv.Atoi(s.replication(t)["master_port"])
	return port
}

// WaitInSync waits until the replica s has its link to its master up and is
// not loading a full copy any more.
func (s *Server) WaitInSync(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(failoverTimeout)
	for {
		r := s.replication(t)
		if r["master_link_status"] == "up" && r["master_sync_in_progress"] == "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not in sync within %v: %v", s.Addr(), failoverTimeout, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitReplicated waits until every replica connected to the master s has
// acknowledged everything written to s so far, as WAIT does for one
// connection's writes: what is written before this returns survives a
// failover to any of them.
func (s *Server) WaitReplicated(t testing.TB) {
	t.Helper()
	r := s.replication(t)
	want, err := strconv.ParseInt(r["master_repl_offset"], 10, 64)
	if err != nil || r["role"] != "master" {
		t.Fatalf("%s is not a master: %v", s.Addr(), r)
	}
	deadline := time.Now().Add(failoverTimeout)
	for {
		r = s.replication(t)
		n, _ := strconv.Atoi(r["connected_slaves"])
		acked := n > 0
		for i := range n {
			// slave0:ip=127.0.0.1,port=6380,state=online,offset=1234,lag=0
			for field := range strings.SplitSeq(r["slave"+strconv.Itoa(i)], ",") {
				if v, ok := strings.CutPrefix(field, "offset="); ok {
					if off, _ := strconv.ParseInt(v, 10, 64); off < want {
						acked = false
					}
				}
			}
		}
		if acked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas of %s did not reach offset %d within %v: %v", s.Addr(), want, failoverTimeout, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitSentinelSees waits until the Sentinel s knows the master's replicas
// and the other Sentinels: before that it cannot fail over.
func (s *Server) WaitSentinelSees(t testing.TB, replicas, otherSentinels int) {
	t.Helper()
	deadline := time.Now().Add(failoverTimeout)
	for {
		v, err := s.do(t, "SENTINEL", "MASTER", SentinelMasterName)
		list, _ := v.([]any)
		fields := map[string]string{}
		for i := 0; i+1 < len(list); i += 2 {
			k, _ := list[i].(string)
			val, _ := list[i+1].(string)
			fields[k] = val
		}
		if err == nil && fields["num-slaves"] == strconv.Itoa(replicas) &&
			fields["num-other-sentinels"] == strconv.Itoa(otherSentinels) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sentinel %s does not see %d replicas and %d other Sentinels within %v: %v %v",
				s.Addr(), replicas, otherSentinels, failoverTimeout, fields, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SentinelMaster returns the address the Sentinel s gives clients for the
// master, or "" if it does not answer.
func (s *Server) SentinelMaster(t testing.TB) string {
	t.Helper()
	v, err := s.do(t, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName)
	list, _ := v.([]any)
	if err != nil || len(list) != 2 {
		return ""
	}
	host, _ := list[0].(string)
	port, _ := list[1].(string)
	return host + ":" + port
}

// RestartAsReplica starts the stopped server s again as a replica of the
// server at addr, as a Redis of a Sentinel deployment restarts after asking
// the Sentinels where the master is, and waits until it has caught up.
func (s *Server) RestartAsReplica(t testing.TB, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("replica of %q: %v", addr, err)
	}
	s.mu.Lock()
	s.args = []string{"--replicaof", host, port}
	s.mu.Unlock()
	s.Restart()
	s.WaitInSync(t)
}
