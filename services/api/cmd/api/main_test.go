package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// runMainEnv, set in the environment of a child process, makes the test
// binary run main instead of the tests, so that signals and exit statuses
// are checked on a real process.
const runMainEnv = "API_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	// main switches gin to release mode; tests call run directly, so they
	// do the same here to keep gin's debug lines out of the output.
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// mainProcess returns the command that runs main in a child with exactly
// the environment e.
func mainProcess(t *testing.T, e env) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-host", "127.0.0.1")
	cmd.Env = []string{runMainEnv + "=1"}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("running main: %v", err)
	}
	return ee.ExitCode()
}

func TestMainProcess(t *testing.T) {
	t.Parallel()

	t.Run("SIGTERMExits0", func(t *testing.T) {
		t.Parallel()
		cmd := mainProcess(t, baseEnv(closedAddr(t), "proc").with("SHUTDOWN_DELAY", "100ms"))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })

		// Reading stdout until the listening line both waits for start-up
		// and keeps the pipe drained.
		sc := bufio.NewScanner(stdout)
		listening := false
		for !listening && sc.Scan() {
			listening = strings.Contains(sc.Text(), `"msg":"listening"`)
		}
		if !listening {
			t.Fatalf("child exited without listening: %v", sc.Err())
		}
		go func() {
			for sc.Scan() {
			}
		}()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if got := exitStatus(t, err); got != 0 {
				t.Errorf("exit got %d, want 0", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("child still running 10s after SIGTERM")
		}
	})

	t.Run("BadSettingExits2", func(t *testing.T) {
		t.Parallel()
		cmd := mainProcess(t, baseEnv(closedAddr(t), "proc").with("SESSION_IDLE_TIMEOUT", "abc"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if got := exitStatus(t, cmd.Run()); got != 2 {
			t.Errorf("exit got %d, want 2", got)
		}
		if !strings.Contains(stderr.String(), "SESSION_IDLE_TIMEOUT") {
			t.Errorf("stderr got %q, want it to name SESSION_IDLE_TIMEOUT", stderr.String())
		}
		var line struct{ Level, Msg, Instance, Err string }
		if err := json.Unmarshal([]byte(stderr.String()), &line); err != nil || line.Level != "ERROR" || line.Msg != "exiting" || line.Instance != "proc" {
			t.Errorf("stderr got %q, want one JSON line with level ERROR, msg exiting and instance proc", stderr.String())
		}
	})

	// Flags stop at the first argument that is not one: after a stray
	// argument, -host would be ignored and the replica would listen on
	// every interface. (The stray argument comes last here, so that a
	// replica that wrongly starts listens on loopback only.)
	t.Run("StrayArgumentExits2", func(t *testing.T) {
		t.Parallel()
		cmd := mainProcess(t, baseEnv(closedAddr(t), "proc").with("PORT", "0"))
		cmd.Args = append(cmd.Args, "stray")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if got := exitStatus(t, err); got != 2 || !strings.Contains(stderr.String(), `unexpected argument \"stray\"`) {
				t.Errorf("exit got %d, stderr %q; want 2, naming the argument", got, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("the replica started despite a stray argument")
		}
	})

	t.Run("PortInUseExits1", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		cmd := mainProcess(t, baseEnv(closedAddr(t), "proc").with("PORT", port))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if got := exitStatus(t, cmd.Run()); got != 1 {
			t.Errorf("exit got %d, want 1 (stderr %q)", got, stderr.String())
		}
	})
}
