package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"redis-session-app/services/api/internal/config"
	"redis-session-app/services/api/internal/session"
)

// env is a fake environment.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func hostname() (string, error) { return "host-1", nil }

func parse(t *testing.T, vars map[string]string) config.Config {
	t.Helper()
	c, err := config.Parse(env(vars), hostname)
	if err != nil {
		t.Fatalf("Parse(%v): %v", vars, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	got := parse(t, nil)
	want := config.Config{
		Port:               3000,
		RedisAddrs:         []string{"localhost:6379"},
		RedisTimeout:       500 * time.Millisecond,
		InstanceID:         "host-1",
		SessionIdleTimeout: time.Hour,
		SessionMaxLifetime: 24 * time.Hour,
		SessionMaxPerUser:  100,
		LoginLimitPerUser:  session.Limit{Rate: 10, Period: time.Minute},
		LoginLimitPerIP:    session.Limit{Rate: 30, Period: time.Minute},
		// Five seconds' worth of burst.
		SessionsLimitPerUser: session.Limit{Rate: 20, Period: time.Second, Burst: 100},
		CookieSecure:         true,
		ShutdownDelay:        time.Second,
		ShutdownTimeout:      15 * time.Second,
		LogLevel:             slog.LevelInfo,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestVariables checks, for each variable, that its value lands in its
// field, and that a bad value is an error naming the variable and the value.
func TestVariables(t *testing.T) {
	tests := []struct {
		name  string
		value string
		// field reads the field the variable sets; nil for bad values.
		field func(config.Config) any
		want  any
		// wantErr is a part of the error message, besides the variable's
		// name and the value, which are always required.
		wantErr string
	}{
		{name: "PORT", value: "8080", field: port, want: 8080},
		{name: "PORT", value: "0", field: port, want: 0},
		{name: "PORT", value: "65535", field: port, want: 65535},
		{name: "PORT", value: "65536", wantErr: "greater than 65535"},
		{name: "PORT", value: "-1", wantErr: "less than 0"},
		{name: "PORT", value: "http", wantErr: "not an integer"},
		{name: "PORT", value: " 80", wantErr: "not an integer"},

		{name: "REDIS_ADDR", value: "redis:6379", field: addrs, want: []string{"redis:6379"}},
		{name: "REDIS_ADDR", value: " a:1 , b:2,c:3 ", field: addrs, want: []string{"a:1", "b:2", "c:3"}},
		{name: "REDIS_ADDR", value: "[::1]:7000", field: addrs, want: []string{"[::1]:7000"}},
		{name: "REDIS_ADDR", value: "a:1,,b:2", wantErr: "empty entry"},
		{name: "REDIS_ADDR", value: "a:1,", wantErr: "empty entry"},
		{name: "REDIS_ADDR", value: " ", wantErr: "empty entry"},
		{name: "REDIS_ADDR", value: "redis", wantErr: "not host:port"},
		{name: "REDIS_ADDR", value: ":6379", wantErr: "not host:port"},
		{name: "REDIS_ADDR", value: "redis:0", wantErr: "no port"},
		{name: "REDIS_ADDR", value: "redis:port", wantErr: "no port"},

		{name: "REDIS_MASTER_NAME", value: "mymaster", field: func(c config.Config) any { return c.RedisMasterName }, want: "mymaster"},
		{name: "REDIS_MASTER_NAME", value: " ", wantErr: "white space"},
		{name: "REDIS_MASTER_NAME", value: "my master", wantErr: "white space"},
		{name: "REDIS_MASTER_NAME", value: "mymaster\n", wantErr: "white space"},
		{name: "REDIS_MASTER_NAME", value: "my\x00master", wantErr: "control character"},
		{name: "REDIS_USERNAME", value: "api", field: func(c config.Config) any { return c.RedisUsername }, want: "api"},
		{name: "REDIS_PASSWORD", value: " s3cret ", field: func(c config.Config) any { return c.RedisPassword }, want: " s3cret "},

		{name: "REDIS_TLS", value: "true", field: redisTLS, want: true},
		{name: "REDIS_TLS", value: "false", field: redisTLS, want: false},
		{name: "REDIS_TLS", value: "yes", wantErr: `neither "true" nor "false"`},
		{name: "REDIS_TLS", value: "1", wantErr: `neither "true" nor "false"`},

		{name: "REDIS_TIMEOUT", value: "2s", field: func(c config.Config) any { return c.RedisTimeout }, want: 2 * time.Second},
		{name: "REDIS_TIMEOUT", value: "0", wantErr: "not positive"},
		{name: "REDIS_TIMEOUT", value: "-1s", wantErr: "not positive"},
		{name: "REDIS_TIMEOUT", value: "500", wantErr: "not a duration"},
		{name: "REDIS_TIMEOUT", value: "10ms", field: func(c config.Config) any { return c.RedisTimeout }, want: 10 * time.Millisecond},
		{name: "REDIS_TIMEOUT", value: "9ms", wantErr: "less than 10ms"},
		{name: "REDIS_TIMEOUT", value: "1ns", wantErr: "less than 10ms"},

		{name: "INSTANCE_ID", value: "api-2", field: instanceID, want: "api-2"},
		{name: "INSTANCE_ID", value: strings.Repeat("x", 64), field: instanceID, want: strings.Repeat("x", 64)},
		{name: "INSTANCE_ID", value: strings.Repeat("x", 65), wantErr: "longer than 64"},
		{name: "INSTANCE_ID", value: "api 2", wantErr: "printable ASCII"},
		{name: "INSTANCE_ID", value: "api\r\nX-Evil: 1", wantErr: "printable ASCII"},
		{name: "INSTANCE_ID", value: "apí", wantErr: "printable ASCII"},

		{name: "SESSION_IDLE_TIMEOUT", value: "30m", field: idle, want: 30 * time.Minute},
		{name: "SESSION_IDLE_TIMEOUT", value: "1h30m", field: idle, want: 90 * time.Minute},
		{name: "SESSION_IDLE_TIMEOUT", value: "48h", field: idle, want: 24 * time.Hour}, // capped
		{name: "SESSION_IDLE_TIMEOUT", value: "abc", wantErr: "is not a duration"},
		{name: "SESSION_IDLE_TIMEOUT", value: "0s", wantErr: "not positive"},
		{name: "SESSION_IDLE_TIMEOUT", value: "1s", field: idle, want: time.Second},
		{name: "SESSION_IDLE_TIMEOUT", value: "999ms", wantErr: "less than 1s"},
		{name: "SESSION_IDLE_TIMEOUT", value: "1ns", wantErr: "less than 1s"},

		{name: "SESSION_MAX_LIFETIME", value: "168h", field: func(c config.Config) any { return c.SessionMaxLifetime }, want: 168 * time.Hour},
		{name: "SESSION_MAX_LIFETIME", value: "30m", field: idle, want: 30 * time.Minute}, // caps the idle timeout
		{name: "SESSION_MAX_LIFETIME", value: "1d", wantErr: "not a duration"},
		{name: "SESSION_MAX_LIFETIME", value: "1ns", wantErr: "less than 1s"},
		{name: "SESSION_MAX_LIFETIME", value: "-24h", wantErr: "not positive"},

		{name: "SESSION_MAX_PER_USER", value: "5", field: maxPerUser, want: 5},
		{name: "SESSION_MAX_PER_USER", value: "1", field: maxPerUser, want: 1},
		{name: "SESSION_MAX_PER_USER", value: "1000", field: maxPerUser, want: 1000},
		{name: "SESSION_MAX_PER_USER", value: "0", wantErr: "less than 1"},
		{name: "SESSION_MAX_PER_USER", value: "-1", wantErr: "less than 1"},
		{name: "SESSION_MAX_PER_USER", value: "1001", wantErr: "greater than 1000"},
		{name: "SESSION_MAX_PER_USER", value: "five", wantErr: "not an integer"},
		{name: "SESSION_MAX_PER_USER", value: "99999999999999999999", wantErr: "not an integer"},

		{name: "LOGIN_LIMIT_PER_USER", value: "5/h", field: func(c config.Config) any { return c.LoginLimitPerUser }, want: session.Limit{Rate: 5, Period: time.Hour}},
		{name: "LOGIN_LIMIT_PER_USER", value: "10", wantErr: "N/m"},
		{name: "LOGIN_LIMIT_PER_USER", value: "0/m", wantErr: "N/m"},
		{name: "LOGIN_LIMIT_PER_IP", value: "100/s", field: func(c config.Config) any { return c.LoginLimitPerIP }, want: session.Limit{Rate: 100, Period: time.Second}},
		{name: "LOGIN_LIMIT_PER_IP", value: "30 per minute", wantErr: "N/m"},

		// Same syntax as the login limits; the burst is five periods.
		{name: "SESSIONS_LIMIT_PER_USER", value: "50/m", field: sessionsLimit, want: session.Limit{Rate: 50, Period: time.Minute, Burst: 250}},
		{name: "SESSIONS_LIMIT_PER_USER", value: "1/s", field: sessionsLimit, want: session.Limit{Rate: 1, Period: time.Second, Burst: 5}},
		{name: "SESSIONS_LIMIT_PER_USER", value: "1000/h", field: sessionsLimit, want: session.Limit{Rate: 1000, Period: time.Hour, Burst: 5000}},
		{name: "SESSIONS_LIMIT_PER_USER", value: "20", wantErr: "N/s"},
		{name: "SESSIONS_LIMIT_PER_USER", value: "0/s", wantErr: "N/s"},
		{name: "SESSIONS_LIMIT_PER_USER", value: "-5/s", wantErr: "N/s"},
		{name: "SESSIONS_LIMIT_PER_USER", value: "20/sec", wantErr: "N/s"},
		{name: "SESSIONS_LIMIT_PER_USER", value: "20/d", wantErr: "N/s"},
		{name: "SESSIONS_LIMIT_PER_USER", value: " 20/s", wantErr: "N/s"},
		{name: "SESSIONS_LIMIT_PER_USER", value: "99999999999999999999/s", wantErr: "N/s"},

		{name: "TRUSTED_PROXIES", value: "10.0.0.1", field: proxies, want: prefixes("10.0.0.1/32")},
		{name: "TRUSTED_PROXIES", value: "172.18.0.0/16, ::1,fd00::/8", field: proxies, want: prefixes("172.18.0.0/16", "::1/128", "fd00::/8")},
		{name: "TRUSTED_PROXIES", value: "10.1.2.3/8", wantErr: "has bits set past its /8 (the network is 10.0.0.0/8)"},
		{name: "TRUSTED_PROXIES", value: "::ffff:10.0.0.1", field: proxies, want: prefixes("10.0.0.1/32")},
		{name: "TRUSTED_PROXIES", value: "::ffff:10.0.0.0/104", field: proxies, want: prefixes("10.0.0.0/8")},
		{name: "TRUSTED_PROXIES", value: "::ffff:127.0.0.1/128", field: proxies, want: prefixes("127.0.0.1/32")},
		{name: "REDIS_ADDR", value: "host with space:6379", wantErr: "is not host:port"},
		{name: "TRUSTED_PROXIES", value: "nginx", wantErr: "not an IP address or CIDR"},
		{name: "TRUSTED_PROXIES", value: "10.0.0.0/33", wantErr: "not an IP address or CIDR"},
		{name: "TRUSTED_PROXIES", value: "fe80::1%eth0", wantErr: "not an IP address or CIDR"},
		{name: "TRUSTED_PROXIES", value: "10.0.0.1,,10.0.0.2", wantErr: "empty entry"},

		{name: "COOKIE_SECURE", value: "false", field: cookieSecure, want: false},
		{name: "COOKIE_SECURE", value: "true", field: cookieSecure, want: true},
		{name: "COOKIE_SECURE", value: "False", wantErr: `neither "true" nor "false"`},
		{name: "COOKIE_SECURE", value: "0", wantErr: `neither "true" nor "false"`},

		{name: "SHUTDOWN_DELAY", value: "0", field: delay, want: time.Duration(0)},
		{name: "SHUTDOWN_DELAY", value: "5s", field: delay, want: 5 * time.Second},
		{name: "SHUTDOWN_DELAY", value: "-1s", wantErr: "negative"},
		{name: "SHUTDOWN_DELAY", value: "soon", wantErr: "not a duration"},

		{name: "SHUTDOWN_TIMEOUT", value: "30s", field: func(c config.Config) any { return c.ShutdownTimeout }, want: 30 * time.Second},
		{name: "SHUTDOWN_TIMEOUT", value: "0s", wantErr: "not positive"},

		{name: "LOG_LEVEL", value: "debug", field: logLevel, want: slog.LevelDebug},
		{name: "LOG_LEVEL", value: "warn", field: logLevel, want: slog.LevelWarn},
		{name: "LOG_LEVEL", value: "error", field: logLevel, want: slog.LevelError},
		{name: "LOG_LEVEL", value: "INFO", field: logLevel, want: slog.LevelInfo},
		{name: "LOG_LEVEL", value: "warning", wantErr: "not one of debug, info, warn, error"},
		{name: "LOG_LEVEL", value: "info+2", wantErr: "not one of debug, info, warn, error"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c, err := config.Parse(env(map[string]string{tc.name: tc.value}), hostname)
			if tc.field == nil {
				if err == nil {
					t.Fatalf("got no error, want one")
				}
				msg := err.Error()
				for _, want := range []string{tc.name + ": ", tc.wantErr} {
					if !strings.Contains(msg, want) {
						t.Errorf("got error %q, want it to contain %q", msg, want)
					}
				}
				// A list may be quoted whole or by its bad entry.
				first := strings.TrimSpace(strings.Split(tc.value, ",")[0])
				if !strings.Contains(msg, strconv.Quote(tc.value)) && !strings.Contains(msg, strconv.Quote(first)) {
					t.Errorf("got error %q, want it to quote the value %q", msg, tc.value)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got := tc.field(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func port(c config.Config) any          { return c.Port }
func addrs(c config.Config) any         { return c.RedisAddrs }
func redisTLS(c config.Config) any      { return c.RedisTLS }
func instanceID(c config.Config) any    { return c.InstanceID }
func idle(c config.Config) any          { return c.SessionIdleTimeout }
func maxPerUser(c config.Config) any    { return c.SessionMaxPerUser }
func sessionsLimit(c config.Config) any { return c.SessionsLimitPerUser }
func proxies(c config.Config) any       { return c.TrustedProxies }
func cookieSecure(c config.Config) any  { return c.CookieSecure }
func delay(c config.Config) any         { return c.ShutdownDelay }
func logLevel(c config.Config) any      { return c.LogLevel }

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestAllErrorsReported(t *testing.T) {
	_, err := config.Parse(env(map[string]string{
		"PORT":                    "x",
		"SESSION_IDLE_TIMEOUT":    "abc",
		"COOKIE_SECURE":           "yes",
		"LOG_LEVEL":               "loud",
		"SESSIONS_LIMIT_PER_USER": "lots",
	}), hostname)
	if err == nil {
		t.Fatal("got no error, want one")
	}
	for _, want := range []string{
		`PORT: "x"`,
		`SESSION_IDLE_TIMEOUT: "abc" is not a duration`,
		`COOKIE_SECURE: "yes"`,
		`LOG_LEVEL: "loud"`,
		`SESSIONS_LIMIT_PER_USER: "lots"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error %q, want it to contain %q", err, want)
		}
	}
}

func TestInstanceIDFromHostname(t *testing.T) {
	tests := []struct {
		name     string
		hostname func() (string, error)
		want     string
		wantErr  string
	}{
		{name: "OK", hostname: hostname, want: "host-1"},
		{name: "ErrHostname", hostname: func() (string, error) { return "", errors.New("no uts") }, wantErr: "no uts"},
		{name: "ErrEmpty", hostname: func() (string, error) { return "", nil }, wantErr: "hostname is empty"},
		{name: "ErrTooLong", hostname: func() (string, error) { return strings.Repeat("h", 65), nil }, wantErr: "(the hostname) is longer than 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse(env(nil), tc.hostname)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "INSTANCE_ID") {
					t.Fatalf("got error %v, want one naming INSTANCE_ID and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.InstanceID != tc.want {
				t.Errorf("got %q, want %q", c.InstanceID, tc.want)
			}
		})
	}

	t.Run("SetIgnoresHostname", func(t *testing.T) {
		c, err := config.Parse(env(map[string]string{"INSTANCE_ID": "api-1"}), func() (string, error) {
			return "", errors.New("must not be called")
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.InstanceID != "api-1" {
			t.Errorf("got %q, want %q", c.InstanceID, "api-1")
		}
	})
}

// logJSON logs c with a JSON handler and returns the attributes of the
// "config" group.
func logJSON(t *testing.T, c config.Config) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("decoding %s: %v", buf.Bytes(), err)
	}
	return line.Config
}

func TestLogValue(t *testing.T) {
	c := parse(t, map[string]string{
		"REDIS_PASSWORD":  "hunter2-secret",
		"REDIS_ADDR":      "a:1,b:2",
		"TRUSTED_PROXIES": "10.0.0.0/8",
	})

	got := logJSON(t, c)
	want := map[string]any{
		"port":                    float64(3000),
		"redis_addr":              []any{"a:1", "b:2"},
		"redis_master_name":       "",
		"redis_username":          "",
		"redis_password":          "***",
		"redis_tls":               false,
		"redis_timeout":           "500ms",
		"instance_id":             "host-1",
		"session_idle_timeout":    "1h0m0s",
		"session_max_lifetime":    "24h0m0s",
		"session_max_per_user":    float64(100),
		"login_limit_per_user":    "10/m",
		"login_limit_per_ip":      "30/m",
		"sessions_limit_per_user": "20/s",
		"trusted_proxies":         []any{"10.0.0.0/8"},
		"cookie_secure":           true,
		"shutdown_delay":          "1s",
		"shutdown_timeout":        "15s",
		"log_level":               "INFO",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// Every field of Config is logged: a new field must not be forgotten.
	if n := reflect.TypeFor[config.Config]().NumField(); len(got) != n {
		t.Errorf("got %d logged attributes, want %d, one per field", len(got), n)
	}

	t.Run("NoPassword", func(t *testing.T) {
		if got := logJSON(t, parse(t, nil))["redis_password"]; got != "" {
			t.Errorf("got %q, want empty", got)
		}
	})
}

func TestPasswordNeverInErrors(t *testing.T) {
	_, err := config.Parse(env(map[string]string{
		"REDIS_PASSWORD": "hunter2-secret",
		"PORT":           "bad",
	}), hostname)
	if err == nil {
		t.Fatal("got no error, want one")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("got error %q, want it without the password", err)
	}
}

func FuzzParse(f *testing.F) {
	names := []string{
		"PORT", "REDIS_ADDR", "REDIS_MASTER_NAME", "REDIS_USERNAME", "REDIS_PASSWORD",
		"REDIS_TLS", "REDIS_TIMEOUT", "INSTANCE_ID", "SESSION_IDLE_TIMEOUT",
		"SESSION_MAX_LIFETIME", "SESSION_MAX_PER_USER", "LOGIN_LIMIT_PER_USER",
		"LOGIN_LIMIT_PER_IP", "SESSIONS_LIMIT_PER_USER", "TRUSTED_PROXIES", "COOKIE_SECURE",
		"SHUTDOWN_DELAY", "SHUTDOWN_TIMEOUT", "LOG_LEVEL",
	}
	for _, s := range []string{"", "0", "-1", "1h", "10/m", "a:1,,b", "::1/128", "true", "debug", "\x00", "9999999999999999999h"} {
		f.Add(s, "host")
	}
	f.Fuzz(func(t *testing.T, value, host string) {
		hostname := func() (string, error) { return host, nil }
		// The value in each variable alone, then in all of them at once.
		for _, name := range names {
			c, err := config.Parse(env(map[string]string{name: value}), hostname)
			if err == nil {
				checkInvariants(t, c)
			}
		}
		all := make(map[string]string, len(names))
		for _, name := range names {
			all[name] = value
		}
		if c, err := config.Parse(env(all), hostname); err == nil {
			checkInvariants(t, c)
		}
	})
}

func checkInvariants(t *testing.T, c config.Config) {
	t.Helper()
	switch {
	case c.Port < 0 || c.Port > 65535:
		t.Errorf("got port %d, want 0..65535", c.Port)
	case len(c.RedisAddrs) == 0:
		t.Errorf("got no Redis address")
	case c.RedisTimeout <= 0 || c.SessionIdleTimeout <= 0 || c.SessionMaxLifetime <= 0 || c.ShutdownTimeout <= 0 || c.ShutdownDelay < 0:
		t.Errorf("got a duration out of range: %+v", c)
	case c.SessionIdleTimeout > c.SessionMaxLifetime:
		t.Errorf("got idle %v > max %v", c.SessionIdleTimeout, c.SessionMaxLifetime)
	case c.SessionMaxPerUser < 1 || c.SessionMaxPerUser > 1000:
		t.Errorf("got max per user %d, want 1 to 1000", c.SessionMaxPerUser)
	case c.LoginLimitPerUser.Rate < 1 || c.LoginLimitPerIP.Rate < 1 || c.SessionsLimitPerUser.Rate < 1:
		t.Errorf("got limits %v, %v, %v, want positive rates", c.LoginLimitPerUser, c.LoginLimitPerIP, c.SessionsLimitPerUser)
	case c.SessionsLimitPerUser.BurstOf() < c.SessionsLimitPerUser.Rate:
		t.Errorf("got sessions limit %+v, want a burst of at least its rate", c.SessionsLimitPerUser)
	case c.InstanceID == "" || len(c.InstanceID) > config.MaxInstanceIDLen:
		t.Errorf("got instance id %q", c.InstanceID)
	}
	_ = c.LogValue()
}
