package listener

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dialIdle opens a connection and makes sure the server has accepted it
// (a request answered on it), then leaves it open.
func dialIdle(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func answer(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestConnectionLimits(t *testing.T) {
	m, _ := newManager(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	st := settings
	st.MaxConnsPerIP = 2
	p, err := m.Prepare(specs(addr), st)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	a, b := dialIdle(t, addr), dialIdle(t, addr)
	for _, c := range []net.Conn{a, b} {
		if resp := answer(t, c); resp.StatusCode != 200 {
			t.Fatalf("status %d within the limit", resp.StatusCode)
		}
	}
	resp := answer(t, dialIdle(t, addr))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third connection from one IP: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var body strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&body)
	if !strings.Contains(body.String(), `"code":"max_connections_per_ip"`) {
		t.Errorf("body %s", body.String())
	}
	// Closing one frees its place.
	a.Close()
	until(t, "the freed place", func() bool { return m.limits.open.Load() == 1 })
	if resp := answer(t, dialIdle(t, addr)); resp.StatusCode != 200 {
		t.Errorf("after a close: status %d", resp.StatusCode)
	}

	// The total bound, applied by a reload without a new server: two
	// connections are open (b and the last one), two more fit.
	st.MaxConnsPerIP, st.MaxConns = 0, 4
	p, err = m.Prepare(specs(addr), st)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	dialIdle(t, addr)
	if resp := answer(t, dialIdle(t, addr)); resp.StatusCode != 200 {
		t.Errorf("fourth connection under max 4: %d", resp.StatusCode)
	}
	if resp := answer(t, dialIdle(t, addr)); resp.StatusCode != 503 {
		t.Errorf("fifth connection under max 4: %d, want 503", resp.StatusCode)
	}
}

// TestSlowHeadersDropped: a client that sends its headers a byte at a
// time is dropped after the header timeout, however long the body's read
// timeout is.
func TestSlowHeadersDropped(t *testing.T) {
	m, _ := newManager(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	st := settings
	st.HeaderTimeout, st.ReadTimeout = 300*time.Millisecond, time.Minute
	p, err := m.Prepare(specs(addr), st)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	c := dialIdle(t, addr)
	start := time.Now()
	closed := false
	for i := 0; i < 200 && !closed; i++ {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("G")); err != nil {
			closed = true
			break
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var b [512]byte
		if n, err := c.Read(b[:]); n > 0 || err != nil && !isTimeout(err) {
			closed = true // the server answered (408) or closed
		}
	}
	if !closed {
		t.Fatalf("a slow-header client was still served after %s", time.Since(start))
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
