package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Local images of `make images`; the environment may name others.
var defaultImages = map[string]string{
	"REDIS_IMAGE":      "redis-session-app/redis:bookworm",
	"NGINX_IMAGE":      "redis-session-app/nginx:bookworm",
	"PROMETHEUS_IMAGE": "redis-session-app/prometheus:bookworm",
	"API_IMAGE":        "redis-session-app/api:dev",

	"ALERTMANAGER_IMAGE":   "redis-session-app/alertmanager:bookworm",
	"REDIS_EXPORTER_IMAGE": "redis-session-app/redis-exporter:bookworm",
	"NGINX_EXPORTER_IMAGE": "redis-session-app/nginx-exporter:bookworm",
}

// stack is one running copy of docker-compose.yml under its own project
// name, ports and subnet, so it never clashes with `make up` or another run.
type stack struct {
	compose []string // "docker compose" or "docker-compose"
	file    string
	// secondFile is merged over file, as a docker-compose.override.yml
	// would be (testdata/second-file.yml).
	secondFile string
	project    string
	env        []string
	nginx      string // base URL of nginx on loopback
	prom       string // base URL of Prometheus on loopback
	replicas   []string
	images     map[string]string // image of each *_IMAGE variable
}

// subnetPrefix is the stack's SUBNET_PREFIX: nginx is its .10.
func (s *stack) subnetPrefix() string {
	prefix := ""
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "SUBNET_PREFIX="); ok {
			prefix = v
		}
	}
	return prefix
}

// image returns the image the stack uses for one *_IMAGE variable.
func (s *stack) image(name string) string { return s.images[name] }

// composeTool returns the Compose command line that exists here.
func composeTool(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("the deployment smoke test needs Docker: %v", err)
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("the deployment smoke test needs a running Docker Engine: %v: %s", err, out)
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("the deployment smoke test needs `docker compose` or `docker-compose`; neither is installed")
	return nil
}

// freePort returns a loopback port that nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startStack brings the compose file up and registers its teardown, with
// volumes, on every outcome. On failure it first logs the containers' output.
func startStack(t *testing.T) *stack {
	t.Helper()
	file, err := filepath.Abs("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	second, err := filepath.Abs("testdata/second-file.yml")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{
		compose:    composeTool(t),
		file:       file,
		secondFile: second,
		project:    "e2e" + randomHex(t, 4),
		replicas:   []string{"api1", "api2", "api3"},
	}

	env := os.Environ()
	s.images = map[string]string{}
	for name, def := range defaultImages {
		image := os.Getenv(name)
		if image == "" {
			image = def
			env = append(env, name+"="+image)
		}
		s.images[name] = image
		if out, err := exec.Command("docker", "image", "inspect", image).CombinedOutput(); err != nil {
			t.Fatalf("image %s (%s) is missing; build it with `make images`: %v: %s", image, name, err, firstLine(out))
		}
	}
	nginxPort, promPort, amPort := freePort(t), freePort(t), freePort(t)
	s.nginx = fmt.Sprintf("http://127.0.0.1:%d", nginxPort)
	s.prom = fmt.Sprintf("http://127.0.0.1:%d", promPort)
	env = append(env,
		"NGINX_PORT="+strconv.Itoa(nginxPort),
		"PROMETHEUS_PORT="+strconv.Itoa(promPort),
		"ALERTMANAGER_PORT="+strconv.Itoa(amPort),
		"REDIS_PASSWORD=e2e-"+randomHex(t, 8),
		"COOKIE_SECURE=false",
	)

	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.run(2*time.Minute, "logs", "--no-color", "--tail=60")
			t.Logf("logs of project %s:\n%s", s.project, out)
		}
		if out, err := s.run(3*time.Minute, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
			t.Errorf("tearing down project %s: %v\n%s", s.project, err, out)
		}
	})

	// The subnet is fixed per stack (replicas have fixed addresses), so
	// pick one that no other network on this engine uses; a network made
	// meanwhile makes `up` fail at once, and then another one is tried.
	const attempts = 5
	for i := 1; ; i++ {
		s.env = append(env, "SUBNET_PREFIX="+freeSubnetPrefix(t))
		out, err := s.run(5*time.Minute, "up", "-d", "--no-build")
		if err == nil {
			break
		}
		if i == attempts || !strings.Contains(out, "overlap") {
			t.Fatalf("compose up: %v\n%s", err, out)
		}
		if out, err := s.run(time.Minute, "down", "--volumes", "--remove-orphans"); err != nil {
			t.Fatalf("compose down after a subnet clash: %v\n%s", err, out)
		}
	}
	return s
}

// run runs one Compose command for this stack and returns its combined output.
func (s *stack) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append(append([]string{}, s.compose[1:]...), "-p", s.project, "-f", s.file, "-f", s.secondFile)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, s.compose[0], full...)
	cmd.Env = s.env
	cmd.Dir = filepath.Dir(s.file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", strings.Join(args, " "), ctx.Err())
	}
	return out.String(), err
}

// mustRun is run that fails the test on error.
func (s *stack) mustRun(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := s.run(timeout, args...)
	if err != nil {
		t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// container returns the id of a service's container. It asks docker for
// the labels Compose puts on its containers: a Compose command takes
// seconds to start on a busy machine.
func (s *stack) container(t testing.TB, service string) string {
	t.Helper()
	out, err := docker("ps", "-a", "-q",
		"--filter", "label=com.docker.compose.project="+s.project,
		"--filter", "label=com.docker.compose.service="+service,
		"--filter", "label=com.docker.compose.oneoff=False")
	if err != nil {
		t.Fatalf("containers of %s: %v %s", service, err, out)
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("containers of %s: got %q, want one id", service, id)
	}
	return id
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// poll calls check until it returns nil or timeout passes, and returns the
// last error.
func poll(timeout, every time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}

// docker runs one docker command and returns its combined output.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

// freeSubnetPrefix returns "172.X.Y" such that 172.X.Y.0/24 overlaps no
// network of the Docker Engine. It stays in 172.16.0.0/12, Docker's own
// private range, away from the 10.x and 192.168.x ranges machines and
// their VPNs tend to use.
func freeSubnetPrefix(t *testing.T) string {
	t.Helper()
	out, err := docker("network", "ls", "-q")
	if err != nil {
		t.Fatalf("listing networks: %v %s", err, out)
	}
	var used []*net.IPNet
	if ids := strings.Fields(out); len(ids) > 0 {
		args := append([]string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)
		out, err := docker(args...)
		if err != nil {
			t.Fatalf("inspecting networks: %v %s", err, out)
		}
		for _, cidr := range strings.Fields(out) {
			if _, n, err := net.ParseCIDR(cidr); err == nil {
				used = append(used, n)
			}
		}
	}
	for range 200 {
		prefix := fmt.Sprintf("172.%d.%d", 16+mrand.IntN(16), mrand.IntN(256))
		_, candidate, _ := net.ParseCIDR(prefix + ".0/24")
		free := true
		for _, n := range used {
			if n.Contains(candidate.IP) || candidate.Contains(n.IP) {
				free = false
				break
			}
		}
		if free {
			return prefix
		}
	}
	t.Fatalf("found no free /24 in 172.16.0.0/12 among networks %v", used)
	return ""
}
