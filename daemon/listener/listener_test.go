package listener

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// syncBuffer is a log destination the accept loops and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newManager(t *testing.T) (*Manager, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	m := New(slog.New(slog.NewJSONHandler(log, nil)), func(*Gen) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }
	}, func(ctx *fasthttp.RequestCtx, err error) { ctx.Error(err.Error(), 400) }, metrics.NewSet())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Shutdown(ctx)
	})
	return m, log
}

func specs(addrs ...string) []Spec {
	var out []Spec
	for _, a := range addrs {
		out = append(out, Spec{Addr: a})
	}
	return out
}

var settings = Settings{MaxBodyBytes: 1 << 20, HeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func get(addr string) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "ok" {
		return fmt.Errorf("answer %q", b)
	}
	return nil
}

// until polls cond with a deadline far above what it needs.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSpellingChangeKeepsSocket moves a listener from localhost:P to
// 127.0.0.1:P: one address, so the socket is kept, not bound twice (which
// failed with EADDRINUSE when sockets were keyed by the config's string).
func TestSpellingChangeKeepsSocket(t *testing.T) {
	m, _ := newManager(t)
	port := freePort(t)
	p, err := m.Prepare(specs(fmt.Sprintf("localhost:%d", port)), settings)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := get(addr); err != nil {
		t.Fatal(err)
	}
	p, err = m.Prepare(specs(addr), settings)
	if err != nil {
		t.Fatalf("moving localhost:%d to %s: %v", port, addr, err)
	}
	if len(p.opened) != 0 || len(p.removed) != 0 {
		t.Errorf("plan opens %d and closes %d sockets; want the one kept", len(p.opened), len(p.removed))
	}
	p.Commit()
	if err := get(addr); err != nil {
		t.Fatal(err)
	}
	// Listing both spellings is one socket too.
	if _, err := m.Prepare(specs(addr, fmt.Sprintf("localhost:%d", port)), settings); err != nil {
		t.Fatalf("both spellings: %v", err)
	}
}

// TestDeadListenerRebinds breaks a listener under its accept loop: the
// socket is reported dead, binds the address again by itself and serves.
func TestDeadListenerRebinds(t *testing.T) {
	m, log := newManager(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := m.Prepare(specs(addr), settings)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	if err := m.Health(); err != nil {
		t.Fatalf("health before: %v", err)
	}
	// Break the accept loop with a permanent error while the real socket
	// still holds the address, so the rebind has to wait for it and the
	// dead state is observable; then free the address.
	s := m.sockets[addr]
	real := s.listener()
	s.mu.Lock()
	s.ln = brokenListener{real}
	s.mu.Unlock()
	// The loop is blocked in the real Accept: one connection makes it
	// return and meet the broken listener on its next call.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
	}
	until(t, "the socket reported dead", func() bool { return m.Health() != nil })
	if err := m.Health(); !strings.Contains(err.Error(), addr) {
		t.Errorf("health error %q does not name %s", err, addr)
	}
	real.Close()
	until(t, "the socket bound again", func() bool { return m.Health() == nil && get(addr) == nil })
	for _, want := range []string{"listener stopped; binding it again", "listener bound again"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// brokenListener fails every Accept for good, and leaves the real
// listener, which keeps the address, open when closed.
type brokenListener struct{ real net.Listener }

func (b brokenListener) Accept() (net.Conn, error) { return nil, errors.New("broken for the test") }
func (b brokenListener) Close() error              { return nil }
func (b brokenListener) Addr() net.Addr            { return b.real.Addr() }

// TestDeadActivatedSocketIsUnhealthy: a socket systemd passed cannot be
// bound again, so it stays reported dead, which stops the watchdog.
func TestDeadActivatedSocketIsUnhealthy(t *testing.T) {
	m, log := newManager(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSocket(ln.Addr().String(), ln, true, m.limits)
	m.activated = append(m.activated, s)
	m.StartActivated()
	p, err := m.Prepare(nil, settings)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	if err := get(s.key); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	until(t, "the socket reported dead", func() bool { return m.Health() != nil })
	time.Sleep(3 * rebindFirst) // no rebind is attempted
	if m.Health() == nil {
		t.Error("a dead systemd socket became healthy again")
	}
	if !strings.Contains(log.String(), "cannot be bound again") {
		t.Errorf("log does not say the socket cannot be bound again:\n%s", log.String())
	}
}

func TestRedact(t *testing.T) {
	for _, in := range []string{
		"error when reading request headers: X-API-Key: aia_ywmsj2fz_uetn47jhytafsiefha6osqxwux\r\n",
		"cannot parse Authorization: Bearer sk-secret-value",
		`header "authorization" = "Basic dXNlcjpwYXNz"`,
		"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here",
	} {
		out := Redact(in)
		for _, secret := range []string{"uetn47jhytafsiefha6osqxwux", "sk-secret-value", "dXNlcjpwYXNz", "c2lnbmF0dXJl"} {
			if strings.Contains(out, secret) {
				t.Errorf("Redact(%q) = %q keeps %s", in, out, secret)
			}
		}
	}
	if got := Redact("plain message"); got != "plain message" {
		t.Errorf("Redact changed a plain message: %q", got)
	}
}
