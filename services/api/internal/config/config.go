// Package config reads the configuration of a replica from its environment.
// Every variable has a working default, so a replica starts with none set;
// a value that cannot be used is an error naming the variable, never a
// silent fallback.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"redis-session-app/services/api/internal/session"
)

// Names of the environment variables, as the contract lists them.
const (
	EnvPort                 = "PORT"
	EnvRedisAddr            = "REDIS_ADDR"
	EnvRedisMasterName      = "REDIS_MASTER_NAME"
	EnvRedisUsername        = "REDIS_USERNAME"
	EnvRedisPassword        = "REDIS_PASSWORD"
	EnvRedisTLS             = "REDIS_TLS"
	EnvRedisTimeout         = "REDIS_TIMEOUT"
	EnvInstanceID           = "INSTANCE_ID"
	EnvSessionIdleTimeout   = "SESSION_IDLE_TIMEOUT"
	EnvSessionMaxLifetime   = "SESSION_MAX_LIFETIME"
	EnvSessionMaxPerUser    = "SESSION_MAX_PER_USER"
	EnvLoginLimitPerUser    = "LOGIN_LIMIT_PER_USER"
	EnvLoginLimitPerIP      = "LOGIN_LIMIT_PER_IP"
	EnvSessionsLimitPerUser = "SESSIONS_LIMIT_PER_USER"
	EnvTrustedProxies       = "TRUSTED_PROXIES"
	EnvCookieSecure         = "COOKIE_SECURE"
	EnvShutdownDelay        = "SHUTDOWN_DELAY"
	EnvShutdownTimeout      = "SHUTDOWN_TIMEOUT"
	EnvLogLevel             = "LOG_LEVEL"
)

// SessionsLimitBurstPeriods is the burst of SESSIONS_LIMIT_PER_USER, in
// periods of its rate: a user who has been quiet may make five seconds'
// worth of requests at once at the default of 20/s, that is 100, as a test
// suite or a page listing and revoking in quick steps does, before the
// smooth rate applies. The login limits allow one period's worth.
const SessionsLimitBurstPeriods = 5

// MaxInstanceIDLen bounds INSTANCE_ID, which goes into every response as the
// X-Instance header and into every log line.
const MaxInstanceIDLen = 64

// Config is the configuration of one replica.
type Config struct {
	// Port is the HTTP port. 0 asks the kernel for a free one, which tests
	// use to run several servers side by side.
	Port int

	// RedisAddrs holds one address, several (a Redis Cluster), or the
	// Sentinels when RedisMasterName is set.
	RedisAddrs      []string
	RedisMasterName string
	RedisUsername   string
	RedisPassword   string
	RedisTLS        bool
	// RedisTimeout is the dial, read and write timeout of each Redis call.
	RedisTimeout time.Duration

	// InstanceID names the replica in the X-Instance header and in logs.
	InstanceID string

	// SessionIdleTimeout is the sliding idle expiry. Parse caps it at
	// SessionMaxLifetime: a longer one could never take effect, since no
	// session outlives its absolute lifetime.
	SessionIdleTimeout time.Duration
	SessionMaxLifetime time.Duration
	// SessionMaxPerUser caps live sessions per user, 1 to 1000: the cap
	// also bounds the Redis work of every request on a user's sessions.
	SessionMaxPerUser int

	LoginLimitPerUser session.Limit
	LoginLimitPerIP   session.Limit
	// SessionsLimitPerUser limits the listings of a user's sessions
	// (GET /auth/sessions) per user, with a burst of
	// SessionsLimitBurstPeriods periods.
	SessionsLimitPerUser session.Limit

	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	// A single address is held as a /32 or /128.
	TrustedProxies []netip.Prefix
	CookieSecure   bool

	// ShutdownDelay is how long /readyz answers 503 before the listener
	// closes; 0 closes it at once.
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration

	LogLevel slog.Level
}

// Lower bounds of durations below which the service cannot work as
// configured: a session must outlive the login that made it (times are
// kept in milliseconds and cookies count seconds), and a Redis call must
// leave a script's deadline a margin (see package scriptdeadline).
const (
	minSessionLifetime = time.Second
	minRedisTimeout    = 10 * time.Millisecond
)

// Parse reads the configuration through getenv, taking the hostname as the
// default INSTANCE_ID. An empty variable means its default. All bad values
// are reported at once, joined, so that one failed start shows every one of
// them.
func Parse(getenv func(string) string, hostname func() (string, error)) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		Port:                 p.integer(EnvPort, 3000, 0, 65535),
		RedisAddrs:           p.addrs(EnvRedisAddr, "localhost:6379"),
		RedisMasterName:      p.name(EnvRedisMasterName),
		RedisUsername:        getenv(EnvRedisUsername),
		RedisPassword:        getenv(EnvRedisPassword),
		RedisTLS:             p.boolean(EnvRedisTLS, false),
		RedisTimeout:         p.durationAtLeast(EnvRedisTimeout, 500*time.Millisecond, minRedisTimeout),
		InstanceID:           p.instanceID(hostname),
		SessionIdleTimeout:   p.durationAtLeast(EnvSessionIdleTimeout, time.Hour, minSessionLifetime),
		SessionMaxLifetime:   p.durationAtLeast(EnvSessionMaxLifetime, 24*time.Hour, minSessionLifetime),
		SessionMaxPerUser:    p.integer(EnvSessionMaxPerUser, 100, 1, 1000),
		LoginLimitPerUser:    p.limit(EnvLoginLimitPerUser, "10/m"),
		LoginLimitPerIP:      p.limit(EnvLoginLimitPerIP, "30/m"),
		SessionsLimitPerUser: p.limit(EnvSessionsLimitPerUser, "20/s").WithBurstPeriods(SessionsLimitBurstPeriods),
		TrustedProxies:       p.prefixes(EnvTrustedProxies),
		CookieSecure:         p.boolean(EnvCookieSecure, true),
		ShutdownDelay:        p.duration(EnvShutdownDelay, time.Second, true),
		ShutdownTimeout:      p.duration(EnvShutdownTimeout, 15*time.Second, false),
		LogLevel:             p.logLevel(EnvLogLevel, slog.LevelInfo),
	}
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, err
	}
	c.SessionIdleTimeout = min(c.SessionIdleTimeout, c.SessionMaxLifetime)
	return c, nil
}

// LogValue writes every field, with the Redis password masked, so that the
// configuration can be logged once at start.
func (c Config) LogValue() slog.Value {
	password := ""
	if c.RedisPassword != "" {
		password = "***"
	}
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return slog.GroupValue(
		slog.Int("port", c.Port),
		slog.Any("redis_addr", c.RedisAddrs),
		slog.String("redis_master_name", c.RedisMasterName),
		slog.String("redis_username", c.RedisUsername),
		slog.String("redis_password", password),
		slog.Bool("redis_tls", c.RedisTLS),
		slog.String("redis_timeout", c.RedisTimeout.String()),
		slog.String("instance_id", c.InstanceID),
		slog.String("session_idle_timeout", c.SessionIdleTimeout.String()),
		slog.String("session_max_lifetime", c.SessionMaxLifetime.String()),
		slog.Int("session_max_per_user", c.SessionMaxPerUser),
		slog.String("login_limit_per_user", c.LoginLimitPerUser.String()),
		slog.String("login_limit_per_ip", c.LoginLimitPerIP.String()),
		slog.String("sessions_limit_per_user", c.SessionsLimitPerUser.String()),
		slog.Any("trusted_proxies", proxies),
		slog.Bool("cookie_secure", c.CookieSecure),
		slog.String("shutdown_delay", c.ShutdownDelay.String()),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.String("log_level", c.LogLevel.String()),
	)
}

// parser reads variables and collects what is wrong with them.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, value, problem string) {
	p.errs = append(p.errs, fmt.Errorf("%s: %q %s", name, value, problem))
}

// integer reads a decimal integer in lo..hi; hi < lo means no upper bound.
func (p *parser) integer(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		p.fail(name, v, "is not an integer")
	case n < lo:
		p.fail(name, v, fmt.Sprintf("is less than %d", lo))
	case hi >= lo && n > hi:
		p.fail(name, v, fmt.Sprintf("is greater than %d", hi))
	default:
		return n
	}
	return def
}

// duration reads a Go duration that must be positive, or may also be zero
// when zeroOK.
func (p *parser) duration(name string, def time.Duration, zeroOK bool) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.fail(name, v, "is not a duration (such as 500ms, 90s or 1h)")
	case d < 0 || d == 0 && !zeroOK:
		if zeroOK {
			p.fail(name, v, "is negative")
		} else {
			p.fail(name, v, "is not positive")
		}
	default:
		return d
	}
	return def
}

// durationAtLeast reads a Go duration of at least lo.
func (p *parser) durationAtLeast(name string, def, lo time.Duration) time.Duration {
	d := p.duration(name, def, false)
	if d < lo {
		p.fail(name, p.getenv(name), "is less than "+lo.String())
		return def
	}
	return d
}

// name reads a name that must hold no white space or control character,
// so that a stray space cannot switch a mode on (REDIS_MASTER_NAME=" "
// would ask Sentinels for a master called " ").
func (p *parser) name(name string) string {
	v := p.getenv(name)
	if i := strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		p.fail(name, v, "holds white space or a control character")
		return ""
	}
	return v
}

// boolean accepts exactly "true" or "false": a typo such as "flase" must not
// quietly turn a security setting off or on.
func (p *parser) boolean(name string, def bool) bool {
	switch v := p.getenv(name); v {
	case "":
		return def
	case "true":
		return true
	case "false":
		return false
	default:
		p.fail(name, v, `is neither "true" nor "false"`)
		return def
	}
}

func (p *parser) limit(name, def string) session.Limit {
	v := p.getenv(name)
	if v == "" {
		v = def
	}
	l, err := session.ParseLimit(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", name, err))
	}
	return l
}

func (p *parser) logLevel(name string, def slog.Level) slog.Level {
	switch v := p.getenv(name); strings.ToLower(v) {
	case "":
		return def
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		p.fail(name, v, "is not one of debug, info, warn, error")
		return def
	}
}

// list splits a comma-separated value, trimming each entry. An empty entry
// is an error rather than skipped: "a,,b" is more likely a mistake than
// meant.
func (p *parser) list(name string) []string {
	v := p.getenv(name)
	if v == "" {
		return nil
	}
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			p.fail(name, v, "has an empty entry")
			return nil
		}
		out = append(out, e)
	}
	return out
}

func (p *parser) addrs(name, def string) []string {
	if p.getenv(name) == "" {
		return []string{def}
	}
	addrs := p.list(name)
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || strings.ContainsFunc(host, unicode.IsSpace) {
			p.fail(name, a, "is not host:port")
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.fail(name, a, "has no port in 1..65535")
		}
	}
	return addrs
}

// prefixes reads IPs and CIDRs. An IPv4-mapped IPv6 address is taken as the
// IPv4 address it maps, which is how peers show up, in a CIDR too
// (::ffff:10.0.0.0/104 is 10.0.0.0/8): as written it would match no peer.
// A CIDR with bits set past its length (10.0.0.1/24) is refused: it is
// either a mistyped address or a mistyped length, and masking it would
// trust a whole network where one address was meant.
func (p *parser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, e := range p.list(name) {
		if strings.Contains(e, "/") {
			pre, err := netip.ParsePrefix(e)
			if err != nil {
				p.fail(name, e, "is not an IP address or CIDR")
				continue
			}
			if pre != pre.Masked() {
				p.fail(name, e, fmt.Sprintf("has bits set past its /%d (the network is %s)", pre.Bits(), pre.Masked()))
				continue
			}
			if pre.Addr().Is4In6() {
				// Masked, it is at least a /96: ::ffff:0:0/96 maps IPv4.
				pre = netip.PrefixFrom(pre.Addr().Unmap(), pre.Bits()-96)
			}
			out = append(out, pre)
			continue
		}
		addr, err := netip.ParseAddr(e)
		if err != nil || addr.Zone() != "" {
			p.fail(name, e, "is not an IP address or CIDR")
			continue
		}
		addr = addr.Unmap()
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out
}

// instanceID reads INSTANCE_ID, defaulting to the hostname. It must be safe
// in an HTTP header and a log line: printable ASCII without spaces.
func (p *parser) instanceID(hostname func() (string, error)) string {
	v := p.getenv(EnvInstanceID)
	source := "is"
	if v == "" {
		h, err := hostname()
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("%s: not set and the hostname is unknown: %w", EnvInstanceID, err))
			return ""
		}
		v, source = h, "(the hostname) is"
	}
	switch {
	case v == "":
		p.errs = append(p.errs, fmt.Errorf("%s: not set and the hostname is empty", EnvInstanceID))
	case len(v) > MaxInstanceIDLen:
		p.fail(EnvInstanceID, v, fmt.Sprintf("%s longer than %d characters", source, MaxInstanceIDLen))
	case strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		p.fail(EnvInstanceID, v, source+" not printable ASCII without spaces")
	default:
		return v
	}
	return ""
}
