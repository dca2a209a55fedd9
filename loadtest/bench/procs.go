package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"redis-session-app/loadtest/internal/poll"
)

// proc is a server the benchmark started; stop ends it by its pid.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

// procs are every server of one benchmark run, stopped in reverse order.
type procs struct {
	dir  string
	list []*proc
}

// start runs name with args and env, its output going to DIR/name.log.
func (ps *procs) start(name string, env []string, path string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(ps.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that an interrupt of the benchmark does not
	// reach it before the benchmark stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	ps.list = append(ps.list, p)
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits, then SIGKILL.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (ps *procs) stopAll() {
	for i := len(ps.list) - 1; i >= 0; i-- {
		ps.list[i].stop()
	}
	ps.list = nil
}

// stop ends the servers them, in reverse order, and forgets them: stopAll
// and exited no longer see them.
func (ps *procs) stop(them ...*proc) {
	for i := len(them) - 1; i >= 0; i-- {
		them[i].stop()
	}
	ps.list = slices.DeleteFunc(ps.list, func(p *proc) bool { return slices.Contains(them, p) })
}

// exited reports an early exit of any server.
func (ps *procs) exited() error {
	for _, p := range ps.list {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited: %v (see %s)", p.name, err, filepath.Join(ps.dir, p.name+".log"))
		default:
		}
	}
	return nil
}

// freePort asks the kernel for a loopback port that is free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP waits until url answers 200, as long as none of ps's
// processes has exited.
func waitHTTP(ctx context.Context, ps *procs, url string) error {
	return waitOK(ctx, 20*time.Second, url, ps.exited)
}

// waitOK waits up to within until url answers 200, giving up at once when
// alive reports an error.
func waitOK(ctx context.Context, within time.Duration, url string, alive func() error) error {
	client := &http.Client{Timeout: time.Second}
	return poll.Until(ctx, within, 100*time.Millisecond, func() error {
		if err := alive(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	})
}

// cpuSeconds is the CPU time (user + system) a process and its threads
// used, from /proc.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	// USER_HZ is 100 on every Linux this runs on.
	return (utime + stime) / 100, nil
}

// children lists the pids whose parent is pid (nginx's workers).
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", n))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if ppid, ok := strings.CutPrefix(sc.Text(), "PPid:"); ok {
				if p, _ := strconv.Atoi(strings.TrimSpace(ppid)); p == pid {
					out = append(out, n)
				}
				break
			}
		}
		f.Close()
	}
	return out
}

// treeCPU is the CPU time of pid and its children.
func treeCPU(pid int) float64 {
	total, _ := cpuSeconds(pid)
	for _, c := range children(pid) {
		s, _ := cpuSeconds(c)
		total += s
	}
	return total
}
