package systemtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	moby "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Local images of `make images`, named by the same variables and with the
// same defaults as deploy/e2e; the environment may name others.
var defaultImages = map[string]string{
	"REDIS_IMAGE": "redis-session-app/redis:bookworm",
	"NGINX_IMAGE": "redis-session-app/nginx:bookworm",
	"API_IMAGE":   "redis-session-app/api:dev",
}

const (
	apiPort   = "3000/tcp"
	nginxPort = "8080/tcp"
	redisPort = "6379/tcp"

	// The name nginx.conf's upstream resolves, carried by every replica on edge.
	replicaAlias = "api-replicas"
	// The name the replicas reach Redis by, on data.
	redisAlias = "redis"

	// Every container, network and volume of one run carries this label
	// with the run's id, which is how the final check finds leftovers.
	runLabel = "org.redis-session-app.systemtest"

	startTimeout = 60 * time.Second
)

// Host numbers on the edge subnet: nginx and the replicas have fixed
// addresses (nginx resolves api-replicas only when it loads its
// configuration, so a replica must come back where it was), and nothing
// else can take one because Docker hands out only the upper half.
const (
	nginxHost        = 10
	firstReplicaHost = 11 // api1, api2, api3
	firstExtraHost   = 20 // replicas a case starts for itself
)

// stack is the system under test: nginx and three replicas on edge, the
// replicas and Redis on data, Redis's AOF on a named volume.
type stack struct {
	runID         string
	labels        map[string]string
	images        map[string]string
	docker        *testcontainers.DockerClient
	edge, data    *testcontainers.DockerNetwork
	edgeSubnet    netip.Prefix
	redisPassword string
	redisVolume   string

	redis    *node
	replicas []*node // api1, api2, api3 behind nginx
	nginx    *node
}

// node is one container and, for the API and nginx, an HTTP client bound
// to its port published on 127.0.0.1.
type node struct {
	name string
	ip   netip.Addr // on edge; invalid for Redis
	ctr  testcontainers.Container
	api  *client // nil for Redis
}

// startStack checks the images, builds the topology and registers its
// teardown (containers, networks, volume, then a check that nothing of
// the run is left) on every outcome.
func startStack(t *testing.T) *stack {
	t.Helper()
	for _, name := range []string{"TESTCONTAINERS_RYUK_DISABLED", "TESTCONTAINERS_HOST_OVERRIDE"} {
		if os.Getenv(name) == "" {
			t.Fatalf("%s is not set: run the suite with `make e2e`, which exports it (see README)", name)
		}
	}
	ctx := context.Background()
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("the suite needs a running Docker Engine: %v", err)
	}
	s := &stack{
		runID:         randomHex(t, 4),
		images:        map[string]string{},
		docker:        docker,
		redisPassword: "systemtest-" + randomHex(t, 8),
	}
	s.labels = map[string]string{runLabel: s.runID}
	// Registered first, so it runs last: after every other cleanup.
	t.Cleanup(func() {
		s.checkNothingLeft(t)
		docker.Close()
	})

	// A missing image would make testcontainers-go try a pull, which
	// cannot work here: fail at once and say how to build it.
	for name, def := range defaultImages {
		image := os.Getenv(name)
		if image == "" {
			image = def
		}
		if _, err := docker.ImageInspect(ctx, image); err != nil {
			t.Fatalf("image %s (%s) is missing; build it with `make images`: %v", image, name, err)
		}
		s.images[name] = image
	}

	s.edge, s.edgeSubnet = s.newEdgeNetwork(t)
	// data is internal: it has no way out of Docker, and Redis, on data
	// alone, publishes nothing.
	s.data = s.newNetwork(t, tcnetwork.WithInternal())

	s.redisVolume = "systemtest-" + s.runID + "-redis"
	if _, err := docker.VolumeCreate(ctx, moby.VolumeCreateOptions{Name: s.redisVolume, Labels: s.labels}); err != nil {
		t.Fatalf("creating volume %s: %v", s.redisVolume, err)
	}
	t.Cleanup(func() {
		if _, err := docker.VolumeRemove(context.Background(), s.redisVolume, moby.VolumeRemoveOptions{Force: true}); err != nil {
			t.Errorf("removing volume %s: %v", s.redisVolume, err)
		}
	})
	s.redis = s.startRedis(t, "redis", redisAlias, s.redisVolume, true)
	s.replicas = s.startReplicas(t,
		replicaSpec{name: "api1", host: firstReplicaHost, alias: true},
		replicaSpec{name: "api2", host: firstReplicaHost + 1, alias: true},
		replicaSpec{name: "api3", host: firstReplicaHost + 2, alias: true},
	)
	// After the replicas: nginx resolves api-replicas once, when it loads.
	s.nginx = s.startNginx(t)
	return s
}

// all lists the stack's containers.
func (s *stack) all() []*node {
	return append([]*node{s.redis, s.nginx}, s.replicas...)
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newNetwork creates a bridge network removed when t ends.
func (s *stack) newNetwork(t *testing.T, opts ...tcnetwork.NetworkCustomizer) *testcontainers.DockerNetwork {
	t.Helper()
	opts = append(opts, tcnetwork.WithLabels(s.labels))
	nw, err := tcnetwork.New(context.Background(), opts...)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("creating network: %v", err)
	}
	return nw
}

// newEdgeNetwork creates edge on a /24 of 172.16.0.0/12 that no other
// network uses: the daemon refuses an overlapping one, so a clash with
// another run is simply another draw.
func (s *stack) newEdgeNetwork(t *testing.T) (*testcontainers.DockerNetwork, netip.Prefix) {
	t.Helper()
	var lastErr error
	for range 20 {
		base := netip.AddrFrom4([4]byte{172, byte(16 + mrand.IntN(16)), byte(mrand.IntN(256)), 0})
		subnet := netip.PrefixFrom(base, 24)
		nw, err := tcnetwork.New(context.Background(),
			tcnetwork.WithLabels(s.labels),
			tcnetwork.WithIPAM(&network.IPAM{Config: []network.IPAMConfig{{
				Subnet:  subnet,
				Gateway: hostAddr(subnet, 1),
				// Containers without a fixed address draw from the upper
				// half, so none takes a replica's address while it is down.
				IPRange: netip.PrefixFrom(hostAddr(subnet, 128), 25),
			}}}),
		)
		if err != nil {
			lastErr = err
			continue
		}
		testcontainers.CleanupNetwork(t, nw)
		return nw, subnet
	}
	t.Fatalf("creating the edge network: no free subnet found: %v", lastErr)
	return nil, netip.Prefix{}
}

// hostAddr returns host number n of an IPv4 /24.
func hostAddr(subnet netip.Prefix, n byte) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = n
	return netip.AddrFrom4(a)
}

// loopbackPorts publishes each port on 127.0.0.1 only, on a port the
// daemon picks; without it the daemon would bind every interface.
func loopbackPorts(ports ...string) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{}
		for _, p := range ports {
			hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
		}
	}
}

// fixedAddress pins a container's address on a network, as
// docker-compose.yml's ipv4_address does.
func fixedAddress(networkName string, ip netip.Addr) func(map[string]*network.EndpointSettings) {
	return func(eps map[string]*network.EndpointSettings) {
		ep, ok := eps[networkName]
		if !ok {
			ep = &network.EndpointSettings{}
			eps[networkName] = ep
		}
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
	}
}

// create creates (and with started, starts) a container and registers its
// removal first thing, also when starting fails.
func (s *stack) create(t *testing.T, name string, req testcontainers.ContainerRequest, started bool) testcontainers.Container {
	t.Helper()
	ctr, err := testcontainers.GenericContainer(context.Background(), testcontainers.GenericContainerRequest{
		ContainerRequest: s.named(req, name),
		Started:          started,
		Logger:           tclog.NewNoopLogger(),
	})
	testcontainers.CleanupContainer(t, ctr, testcontainers.StopTimeout(5*time.Second))
	// After the removal is registered, so it runs before it.
	t.Cleanup(func() {
		if t.Failed() && ctr != nil {
			s.saveLogs(t, &node{name: name, ctr: ctr})
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return ctr
}

// startRedis starts a Redis on data under alias. With a volume it keeps an
// append-only file there.
//
// appendfsync everysec, as in docker-compose.yml: Redis normally writes a
// change to the AOF (the kernel) before it answers, but while a background
// fsync is slow it postpones the write for up to 2 s and answers all the
// same, so a crash of the Redis process (SIGKILL, OOM kill) or of the
// machine can lose up to about 2 s of acknowledged writes: logins, and
// logouts too. "always" would prevent that with an fdatasync on Redis's
// main thread per event-loop pass with writes, which on a slow disk stalls
// every client, reads too. `--save ""` turns off the RDB snapshot Redis
// would otherwise write when it shuts down, so a session that survives a
// restart here survives through the AOF alone.
func (s *stack) startRedis(t *testing.T, name, alias, volume string, started bool) *node {
	t.Helper()
	// hash-max-listpack-value as docker-compose.yml sets it: session
	// hashes stay compact with a User-Agent of up to 512 bytes.
	cmd := []string{"redis-server", "--dir", "/data", "--save", "", "--requirepass", s.redisPassword,
		"--hash-max-listpack-value", "512"}
	var mounts testcontainers.ContainerMounts
	if volume != "" {
		cmd = append(cmd, "--appendonly", "yes", "--appendfsync", "everysec")
		mounts = testcontainers.ContainerMounts{{Source: testcontainers.GenericVolumeMountSource{Name: volume}, Target: "/data"}}
	}
	ctr := s.create(t, name, testcontainers.ContainerRequest{
		Image: s.images["REDIS_IMAGE"],
		Cmd:   cmd,
		// redis-cli reads its password from here, as in the compose file.
		Env:            map[string]string{"REDISCLI_AUTH": s.redisPassword},
		Networks:       []string{s.data.Name},
		NetworkAliases: map[string][]string{s.data.Name: {alias}},
		Mounts:         mounts,
		// Named so that testcontainers-go does not publish the image's
		// EXPOSE on every interface; on the internal data network the
		// daemon publishes nothing at all.
		ExposedPorts:       []string{redisPort},
		HostConfigModifier: loopbackPorts(redisPort),
		WaitingFor: wait.ForExec([]string{"redis-cli", "ping"}).
			WithResponseMatcher(func(r io.Reader) bool { b, _ := io.ReadAll(r); return bytes.Contains(b, []byte("PONG")) }).
			WithStartupTimeout(startTimeout),
	}, started)
	return &node{name: name, ctr: ctr}
}

// replicaSpec says how one API replica differs from the stack's default.
type replicaSpec struct {
	name  string
	host  byte // host number on edge
	alias bool // behind nginx (carries api-replicas)
	env   map[string]string
	// waitFor is the path that must answer 200 before the replica counts
	// as started: /readyz, or /healthz for one started without Redis.
	waitFor string
}

// replicaEnv is every replica's configuration in the suite.
//
// All of the suite's clients come from one address, the host's, which the
// replicas see through nginx's X-Forwarded-For or directly as the edge
// gateway. The login limits are raised so that 100 users logging in at
// once (UsersAreIsolated) and the logins under load do not share the
// default 30 a minute of one client IP; the limits themselves are the
// service's own tests' business.
func (s *stack) replicaEnv(name string) map[string]string {
	return map[string]string{
		"PORT":                 "3000",
		"INSTANCE_ID":          name,
		"REDIS_ADDR":           redisAlias + ":6379",
		"REDIS_PASSWORD":       s.redisPassword,
		"TRUSTED_PROXIES":      hostAddr(s.edgeSubnet, nginxHost).String(),
		"COOKIE_SECURE":        "false",
		"LOGIN_LIMIT_PER_IP":   "6000/m",
		"LOGIN_LIMIT_PER_USER": "600/m",
	}
}

// startReplicas starts API replicas side by side, each on edge at its
// fixed address and on data.
func (s *stack) startReplicas(t *testing.T, specs ...replicaSpec) []*node {
	t.Helper()
	nodes := make([]*node, len(specs))
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, spec := range specs {
		env := s.replicaEnv(spec.name)
		for k, v := range spec.env {
			env[k] = v
		}
		ip := hostAddr(s.edgeSubnet, spec.host)
		aliases := map[string][]string{}
		if spec.alias {
			aliases[s.edge.Name] = []string{replicaAlias}
		}
		path := spec.waitFor
		if path == "" {
			path = "/readyz"
		}
		req := testcontainers.ContainerRequest{
			Image:    s.images["API_IMAGE"],
			Env:      env,
			Hostname: spec.name,
			// edge first: the fixed address applies to the network the
			// container is created on; data is joined after.
			Networks:                 []string{s.edge.Name, s.data.Name},
			NetworkAliases:           aliases,
			EndpointSettingsModifier: fixedAddress(s.edge.Name, ip),
			ExposedPorts:             []string{apiPort},
			HostConfigModifier:       loopbackPorts(apiPort),
			// The image is FROM scratch: no shell for an internal port
			// check, so readiness is asked over HTTP.
			WaitingFor: wait.ForHTTP(path).WithPort(apiPort).WithStartupTimeout(startTimeout),
		}
		nodes[i] = &node{name: spec.name, ip: ip}
		wg.Go(func() {
			// The removal is registered below, on t's goroutine.
			ctr, err := testcontainers.GenericContainer(context.Background(), testcontainers.GenericContainerRequest{
				ContainerRequest: s.named(req, spec.name),
				Started:          true,
				Logger:           tclog.NewNoopLogger(),
			})
			nodes[i].ctr, errs[i] = ctr, err
		})
	}
	wg.Wait()
	for _, n := range nodes {
		testcontainers.CleanupContainer(t, n.ctr, testcontainers.StopTimeout(5*time.Second))
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.saveLogs(t, nodes...)
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("starting %s: %v", specs[i].name, err)
		}
	}
	for _, n := range nodes {
		n.api = newClient(t, n.name, n.ctr, apiPort)
		n.api.replica = true
	}
	return nodes
}

// named gives a request the run's container name and labels: a copy of
// them, since testcontainers adds its own labels to the request's map, and
// replicas start at once.
func (s *stack) named(req testcontainers.ContainerRequest, name string) testcontainers.ContainerRequest {
	req.Name = "systemtest-" + s.runID + "-" + name
	req.Labels = maps.Clone(s.labels)
	return req
}

// startNginx starts nginx on edge at its fixed address with the repo's
// nginx.conf copied in byte for byte.
func (s *stack) startNginx(t *testing.T) *node {
	t.Helper()
	conf, err := filepath.Abs("../../nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	ctr := s.create(t, "nginx", testcontainers.ContainerRequest{
		Image:                    s.images["NGINX_IMAGE"],
		Cmd:                      []string{"nginx", "-g", "daemon off;"},
		Files:                    []testcontainers.ContainerFile{{HostFilePath: conf, ContainerFilePath: "/etc/nginx/nginx.conf", FileMode: 0o644}},
		Networks:                 []string{s.edge.Name},
		EndpointSettingsModifier: fixedAddress(s.edge.Name, hostAddr(s.edgeSubnet, nginxHost)),
		ExposedPorts:             []string{nginxPort},
		HostConfigModifier:       loopbackPorts(nginxPort),
		WaitingFor:               wait.ForHTTP("/healthz").WithPort(nginxPort).WithStartupTimeout(startTimeout),
	}, true)
	n := &node{name: "nginx", ip: hostAddr(s.edgeSubnet, nginxHost), ctr: ctr}
	n.api = newClient(t, n.name, ctr, nginxPort)
	return n
}

// saveLogs writes each container's output to a file and names the files
// in the test output. With -artifacts (as `make e2e` runs) the files are
// under the test's artifact directory; otherwise in a directory of their
// own that outlives the test.
func (s *stack) saveLogs(t *testing.T, nodes ...*node) {
	t.Helper()
	dir, err := logDir(t)
	if err != nil {
		t.Errorf("no directory for the containers' logs: %v", err)
		return
	}
	for _, n := range nodes {
		if n == nil || n.ctr == nil {
			continue
		}
		path := filepath.Join(dir, n.name+".log")
		if err := writeLogs(n.ctr, path); err != nil {
			t.Errorf("logs of %s: %v", n.name, err)
			continue
		}
		t.Logf("logs of %s: %s", n.name, path)
	}
}

func logDir(t *testing.T) (string, error) {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir(), nil
	}
	return os.MkdirTemp("", "systemtest-logs-")
}

func writeLogs(ctr testcontainers.Container, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkNothingLeft fails the test when a container, network or volume of
// this run still exists after the teardown.
func (s *stack) checkNothingLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	filter := moby.Filters{}.Add("label", runLabel+"="+s.runID)
	var left []string
	if cs, err := s.docker.ContainerList(ctx, moby.ContainerListOptions{All: true, Filters: filter}); err != nil {
		t.Errorf("listing containers: %v", err)
	} else {
		for _, c := range cs.Items {
			left = append(left, "container "+strings.Join(c.Names, ","))
		}
	}
	if ns, err := s.docker.NetworkList(ctx, moby.NetworkListOptions{Filters: filter}); err != nil {
		t.Errorf("listing networks: %v", err)
	} else {
		for _, n := range ns.Items {
			left = append(left, "network "+n.Name)
		}
	}
	if vs, err := s.docker.VolumeList(ctx, moby.VolumeListOptions{Filters: filter}); err != nil {
		t.Errorf("listing volumes: %v", err)
	} else {
		for _, v := range vs.Items {
			left = append(left, "volume "+v.Name)
		}
	}
	if len(left) > 0 {
		t.Errorf("left behind after the teardown: %s", strings.Join(left, "; "))
	}
}

// kill sends SIGKILL and waits until the container has stopped.
func (s *stack) kill(t *testing.T, n *node) {
	t.Helper()
	if _, err := s.docker.ContainerKill(context.Background(), n.ctr.GetContainerID(), moby.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("killing %s: %v", n.name, err)
	}
	eventually(t, 10*time.Second, n.name+" stopped", func() error {
		st, err := n.ctr.State(context.Background())
		if err != nil {
			return err
		}
		if st.Running {
			return errors.New("still running")
		}
		return nil
	})
}

// stop stops a container gracefully (SIGTERM, or the image's stop signal;
// SIGKILL after 20 s, as compose's stop_grace_period).
func stop(t *testing.T, n *node) {
	t.Helper()
	grace := 20 * time.Second
	if err := n.ctr.Stop(context.Background(), &grace); err != nil {
		t.Fatalf("stopping %s: %v", n.name, err)
	}
}

// start starts a stopped container, waits for its wait strategy and reads
// its published port again: the daemon picks a new one.
func start(t *testing.T, n *node) {
	t.Helper()
	if err := n.ctr.Start(context.Background()); err != nil {
		t.Fatalf("starting %s: %v", n.name, err)
	}
	if n.api != nil {
		n.api.refresh(t)
	}
}

// restartAll stops and starts nodes at the same time.
func restartAll(t *testing.T, nodes ...*node) {
	t.Helper()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	grace := 20 * time.Second
	for i, n := range nodes {
		wg.Go(func() {
			if err := n.ctr.Stop(context.Background(), &grace); err != nil {
				errs[i] = fmt.Errorf("stopping %s: %w", n.name, err)
				return
			}
			if err := n.ctr.Start(context.Background()); err != nil {
				errs[i] = fmt.Errorf("starting %s: %w", n.name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.api != nil {
			n.api.refresh(t)
		}
	}
}

// disconnect cuts a container off a network.
func (s *stack) disconnect(t *testing.T, n *node, nw *testcontainers.DockerNetwork) {
	t.Helper()
	if _, err := s.docker.NetworkDisconnect(context.Background(), nw.ID, moby.NetworkDisconnectOptions{Container: n.ctr.GetContainerID()}); err != nil {
		t.Fatalf("disconnecting %s: %v", n.name, err)
	}
}

// reconnect joins a container of the stack to a network again: on edge at
// its fixed address, and with the alias it is known by.
func (s *stack) reconnect(t *testing.T, n *node, nw *testcontainers.DockerNetwork) {
	t.Helper()
	ep := &network.EndpointSettings{}
	switch {
	case nw == s.edge:
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.ip}
		if n != s.nginx {
			ep.Aliases = []string{replicaAlias}
		}
	case n == s.redis:
		ep.Aliases = []string{redisAlias}
	}
	if _, err := s.docker.NetworkConnect(context.Background(), nw.ID, moby.NetworkConnectOptions{Container: n.ctr.GetContainerID(), EndpointConfig: ep}); err != nil {
		t.Fatalf("reconnecting %s: %v", n.name, err)
	}
	if n.api != nil {
		n.api.refresh(t)
	}
}

// inspect returns a container's state and settings.
func inspect(t *testing.T, n *node) *container.InspectResponse {
	t.Helper()
	info, err := n.ctr.Inspect(context.Background())
	if err != nil {
		t.Fatalf("inspecting %s: %v", n.name, err)
	}
	return info
}

// exec runs a command in a container and returns its exit code and output.
func exec(t *testing.T, n *node, cmd ...string) (int, string) {
	t.Helper()
	// Multiplexed strips the headers of Docker's stream from the output.
	code, r, err := n.ctr.Exec(context.Background(), cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("running %v in %s: %v", cmd, n.name, err)
	}
	out, _ := io.ReadAll(r)
	return code, string(out)
}

// eventually calls check until it returns nil, every 100 ms until the
// deadline; then the test fails with the last error. This is the suite's
// one way of waiting.
func eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
