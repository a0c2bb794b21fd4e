package openai

import (
	"crypto/tls"
	"net"
	"runtime"
	"testing"
	"time"
)

// wrapped is a connection as the daemon's listener hands it out: a struct
// that embeds the net.Conn.
type wrapped struct {
	net.Conn
	tag int
}

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func TestRawConnUnwraps(t *testing.T) {
	s, _ := pair(t)
	for name, c := range map[string]net.Conn{
		"tcp":             s,
		"embedded":        &wrapped{Conn: s},
		"tls of embedded": tls.Server(&wrapped{Conn: s}, &tls.Config{}),
		"embedded twice":  &wrapped{Conn: &wrapped{Conn: s}},
	} {
		if rawConn(c) == nil {
			t.Errorf("%s: no socket found", name)
		}
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	for name, c := range map[string]net.Conn{"pipe": p, "nil": nil, "empty wrapper": &wrapped{}} {
		if rawConn(c) != nil {
			t.Errorf("%s: a socket found", name)
		}
	}
}

// TestWatchHangup watches a connection with data the server has not read
// (a pipelined request): that is no hangup. Then the client closes and the
// watch calls gone.
func TestWatchHangup(t *testing.T) {
	if !canWatch {
		t.Skip("no TCP state on " + runtime.GOOS)
	}
	for _, how := range []string{"close", "half-close", "reset"} {
		t.Run(how, func(t *testing.T) {
			s, c := pair(t)
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			left, err := peerLeft(rawConn(&wrapped{Conn: s}))
			if err != nil || left {
				t.Fatalf("with unread data: left %v, %v", left, err)
			}
			gone := make(chan struct{})
			stop := watchHangup(tls.Server(&wrapped{Conn: s}, &tls.Config{}), time.Millisecond, func() { close(gone) })
			defer stop()
			switch how {
			case "close":
				c.Close()
			case "half-close":
				c.CloseWrite()
			case "reset":
				c.SetLinger(0)
				c.Close()
			}
			select {
			case <-gone:
			case <-time.After(time.Minute):
				t.Fatal("the watch did not see the client leave")
			}
		})
	}
}

// TestWatchHangupStops checks that stop ends the watch, and that gone is
// not called for a client that stays.
func TestWatchHangupStops(t *testing.T) {
	s, _ := pair(t)
	called := make(chan struct{}, 1)
	stop := watchHangup(s, time.Millisecond, func() { called <- struct{}{} })
	time.Sleep(20 * time.Millisecond) // a few looks at a client that stays
	stop()
	select {
	case <-called:
		t.Error("gone called for a client that is still there")
	default:
	}
}
