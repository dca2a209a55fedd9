package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// composeImages are the image variables docker-compose.yml reads, with the
// local images `make images` builds; the Makefile passes the same.
var composeImages = map[string]string{
	"API_IMAGE":            "redis-session-app/api:dev",
	"REDIS_IMAGE":          "redis-session-app/redis:bookworm",
	"NGINX_IMAGE":          "redis-session-app/nginx:bookworm",
	"PROMETHEUS_IMAGE":     "redis-session-app/prometheus:bookworm",
	"ALERTMANAGER_IMAGE":   "redis-session-app/alertmanager:bookworm",
	"REDIS_EXPORTER_IMAGE": "redis-session-app/redis-exporter:bookworm",
	"NGINX_EXPORTER_IMAGE": "redis-session-app/nginx-exporter:bookworm",
}

// composeStack is docker-compose.yml brought up for the Docker figure under
// a project name, ports and subnet of its own, so that it clashes neither
// with a stack of `make up` nor with a test's.
type composeStack struct {
	tool    []string // "docker compose" or "docker-compose"
	file    string
	envFile string // an empty one: not the repository's .env
	project string
	env     []string
	nginx   string // base URL of its nginx on loopback
}

// errNoImages says that the stack's images are not built: the Docker
// figure is then left out, not the whole run failed.
var errNoImages = errors.New("images missing")

// startCompose brings the stack up with the Compose command tool and
// waits until its nginx answers through a replica. On an error after
// `up` ran, the stack is taken down again.
func startCompose(ctx context.Context, tool, repo, dir string, log io.Writer) (*composeStack, error) {
	file, err := filepath.Abs(filepath.Join(repo, "docker-compose.yml"))
	if err != nil {
		return nil, err
	}
	// The stack is measured as the table says (LOG_LEVEL=info, the
	// service's default limits, no extra profiles), whatever the
	// repository's .env (which make up writes) or the caller's
	// environment would set.
	envFile := filepath.Join(dir, "compose.env")
	if err := os.WriteFile(envFile, nil, 0o644); err != nil {
		return nil, err
	}
	s := &composeStack{tool: strings.Fields(tool), file: file, envFile: envFile, project: "bench" + randomHex()}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COMPOSE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "LOG_LEVEL=info", "LOGIN_LIMIT_PER_IP=", "LOGIN_LIMIT_PER_USER=")
	for name, def := range composeImages {
		image := os.Getenv(name)
		if image == "" {
			image = def
			env = append(env, name+"="+image)
		}
		if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", image).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%w: %s (%s): %s", errNoImages, image, name, firstLine(out))
		}
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	s.nginx = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	env = append(env, "NGINX_PORT="+strconv.Itoa(ports[0]), "PROMETHEUS_PORT="+strconv.Itoa(ports[1]),
		"ALERTMANAGER_PORT="+strconv.Itoa(ports[2]), "REDIS_PASSWORD=bench-"+randomString(12), "COOKIE_SECURE=false")

	// Replicas have fixed addresses in one /24 of the stack's own: try
	// random ones in 172.16.0.0/12 until Docker finds no overlap with
	// its other networks.
	for attempt := 1; ; attempt++ {
		s.env = append(env, fmt.Sprintf("SUBNET_PREFIX=172.%d.%d", 16+rand.IntN(16), rand.IntN(256)))
		out, err := s.run(ctx, 5*time.Minute, "up", "-d", "--no-build")
		if err == nil {
			break
		}
		s.down()
		if attempt == 5 || !strings.Contains(out, "overlap") {
			return nil, fmt.Errorf("compose up: %w\n%s", err, out)
		}
	}
	fmt.Fprintf(log, "compose project %s: nginx %s\n", s.project, s.nginx)
	// Through nginx, /readyz answers 200 only from a replica that reaches Redis.
	err = waitOK(ctx, 2*time.Minute, s.nginx+"/readyz", func() error { return nil })
	if err != nil {
		s.down()
		return nil, fmt.Errorf("the compose stack did not get ready: %w", err)
	}
	return s, nil
}

// down removes the stack's containers, networks and volumes.
func (s *composeStack) down() {
	// Not the run's context: an interrupted run still takes its stack down.
	if out, err := s.run(context.Background(), 3*time.Minute, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
		fmt.Fprintf(os.Stderr, "compose down of project %s: %v\n%s", s.project, err, out)
	}
}

// run runs one Compose command for the stack and returns its output.
func (s *composeStack) run(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	full := append(append([]string{}, s.tool[1:]...), "--env-file", s.envFile, "-p", s.project, "-f", s.file)
	cmd := exec.CommandContext(ctx, s.tool[0], append(full, args...)...)
	cmd.Env = s.env
	cmd.Dir = filepath.Dir(s.file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func randomHex() string {
	return strconv.FormatUint(rand.Uint64()&0xffffffff, 16)
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}
