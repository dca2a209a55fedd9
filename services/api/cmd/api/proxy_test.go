package main

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// proxyMode is how a faultProxy treats traffic.
type proxyMode int

const (
	// proxyUp forwards every byte both ways.
	proxyUp proxyMode = iota
	// proxyDown closes every connection at once, as a crashed Redis or a
	// reset network would.
	proxyDown
	// proxyHang keeps connections open but never answers, as a Redis stuck
	// in a slow command or a silently dropped network would.
	proxyHang
	// proxySlow forwards everything, holding back each reply from Redis
	// for the proxy's delay, as a Redis that answers every call just in
	// time would.
	proxySlow
)

// faultProxy is a TCP proxy on loopback in front of a real Redis, so that a
// test can cut Redis off and bring it back with its data intact. Stopping the
// redis-server itself loses every key, which tests something else.
type faultProxy struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	mode  proxyMode
	delay time.Duration     // of each reply, in proxySlow
	conns map[net.Conn]bool // true for connections to the upstream
}

func startProxy(t testing.TB, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: upstream, conns: make(map[net.Conn]bool)}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.closeConns(func(bool) bool { return true })
	})
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// slow switches to proxySlow with each reply held back for d.
func (p *faultProxy) slow(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
	p.set(proxySlow)
}

// set switches the mode; connections open at the time follow it.
func (p *faultProxy) set(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
	switch m {
	case proxyDown:
		p.closeConns(func(bool) bool { return true })
	case proxyHang:
		// Client sides stay open and unanswered.
		p.closeConns(func(upstream bool) bool { return upstream })
	}
}

func (p *faultProxy) closeConns(which func(upstream bool) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, up := range p.conns {
		if which(up) {
			c.Close()
			delete(p.conns, c)
		}
	}
}

func (p *faultProxy) track(c net.Conn, upstream bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = upstream
}

func (p *faultProxy) current() proxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *faultProxy) handle(client net.Conn) {
	switch p.current() {
	case proxyDown:
		client.Close()
		return
	case proxyHang:
		p.track(client, false)
		hold(client)
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, false)
	p.track(up, true)
	go func() {
		_, _ = io.Copy(up, client)
		up.Close()
	}()
	p.copyReplies(client, up)
	if p.current() == proxyHang {
		hold(client)
		return
	}
	client.Close()
}

// copyReplies copies Redis's replies to the client, holding each read of
// them back for the delay while the proxy is slow.
func (p *faultProxy) copyReplies(client, up net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			p.mu.Lock()
			mode, delay := p.mode, p.delay
			p.mu.Unlock()
			if mode == proxySlow {
				time.Sleep(delay)
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold reads and drops everything the client sends until it hangs up or the
// proxy closes the connection.
func hold(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
	c.Close()
}
