package listener

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// socket is one listening address with its accept loop.
type socket struct {
	key       string // the resolved address, or the address of a systemd socket
	activated bool   // passed by systemd: never closed on reload, never rebound
	limits    *connLimits
	conns     chan net.Conn
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once

	// tls is the TLS configuration new connections get; nil serves
	// plain HTTP. A reload swaps it.
	tls atomic.Pointer[tls.Config]

	mu   sync.Mutex
	ln   net.Listener
	dead error // why the accept loop stopped; nil while it accepts
}

// conn is a connection that knows the socket it came from, so that the
// handler can end keep-alive connections of a removed listener.
type conn struct {
	net.Conn
	s       *socket
	release func() // frees its place in the connection limits
}

func newSocket(key string, ln net.Listener, activated bool, limits *connLimits) *socket {
	return &socket{key: key, ln: ln, activated: activated, limits: limits, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (s *socket) listener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln
}

func (s *socket) addr() net.Addr { return s.listener().Addr() }

func (s *socket) deadErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead
}

// Backoffs of the accept loop: after a temporary error (file descriptors
// exhausted, as net/http waits it out), and between attempts to bind a
// socket whose listener failed for good.
const (
	maxAcceptBackoff = time.Second
	rebindFirst      = 50 * time.Millisecond
	maxRebindBackoff = 5 * time.Second
)

// accept runs the socket's accept loop until the socket is closed. When
// the listener fails for good, the socket is marked dead (Health reports
// it, so the watchdog stops vouching for the daemon) and bound again at
// the same address; a socket systemd passed cannot be, and stays dead.
func (s *socket) accept(logger *slog.Logger) {
	var backoff time.Duration
	for {
		ln := s.listener()
		c, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
				logger.Error("cannot accept a connection; retrying", "addr", s.key, "err", err, "retry_in_seconds", backoff.Seconds())
				if !s.sleep(backoff) {
					return
				}
				continue
			}
			s.mu.Lock()
			s.dead = err
			s.mu.Unlock()
			if s.activated {
				logger.Error("listener stopped; the socket came from systemd and cannot be bound again: restart the service", "addr", s.key, "err", err)
				return
			}
			logger.Error("listener stopped; binding it again", "addr", s.key, "err", err)
			if !s.rebind(logger) {
				return
			}
			continue
		}
		backoff = 0
		release, reason := s.limits.admit(remoteIP(c))
		if reason != "" {
			shed(c, reason)
			continue
		}
		var hc net.Conn = &conn{Conn: c, s: s, release: release}
		if tc := s.tls.Load(); tc != nil {
			// The handshake runs on the connection's first read, in
			// the server's goroutine, not here.
			hc = tls.Server(hc, tc)
		}
		select {
		case s.conns <- hc:
		case <-s.done:
			hc.Close()
			return
		}
	}
}

// rebind binds the socket's address again, retrying with backoff until it
// works or the socket is closed, and reports whether it works.
func (s *socket) rebind(logger *slog.Logger) bool {
	wait := rebindFirst
	for {
		s.listener().Close()
		ln, err := net.Listen("tcp", s.key)
		if err == nil {
			s.mu.Lock()
			if s.closed.Load() {
				s.mu.Unlock()
				ln.Close()
				return false
			}
			s.ln, s.dead = ln, nil
			s.mu.Unlock()
			logger.Info("listener bound again", "addr", s.key)
			return true
		}
		logger.Error("cannot bind the listener again; retrying", "addr", s.key, "err", err, "retry_in_seconds", wait.Seconds())
		if !s.sleep(wait) {
			return false
		}
		wait = min(2*wait, maxRebindBackoff)
	}
}

// sleep waits d, and reports false if the socket was closed meanwhile.
func (s *socket) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *socket) close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.mu.Lock()
		s.ln.Close()
		s.mu.Unlock()
	})
}

// acceptor is the net.Listener one server generation serves on a socket.
// Closing it ends that generation's Serve loop without closing the socket.
type acceptor struct {
	s    *socket
	done chan struct{}
	once sync.Once
}

func (a *acceptor) Accept() (net.Conn, error) {
	select {
	case c := <-a.s.conns:
		return c, nil
	case <-a.done:
	case <-a.s.done:
	}
	return nil, net.ErrClosed
}

func (a *acceptor) Close() error {
	a.once.Do(func() { close(a.done) })
	return nil
}

func (a *acceptor) Addr() net.Addr { return a.s.addr() }

// Gen is one fasthttp.Server and the acceptors it serves.
type Gen struct {
	srv       *fasthttp.Server
	settings  serverSettings
	retired   atomic.Bool
	acceptors map[*socket]*acceptor
	loops     sync.WaitGroup
	running   atomic.Int32
}

// EndsConnection reports whether the connection a request came in on
// should be closed after the response: its server generation retired, or
// its listener was removed.
func (g *Gen) EndsConnection(c net.Conn) bool {
	if g.retired.Load() {
		return true
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*conn); ok {
		return cc.s.closed.Load()
	}
	return false
}
