package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/schema"
)

// The network side of the daemon: bound sockets, which outlive reloads,
// and generations of fasthttp.Server that serve them.
//
// A socket has one accept loop that hands connections to whichever server
// generation is current. fasthttp reads its settings (body limit, read
// and idle timeouts) from the Server struct on every connection, so they
// cannot be changed on a running server without a data race; a reload
// that changes them starts a new generation instead, which serves every
// connection accepted from then on. Connections of the retired generation
// finish the request in flight, are answered with "Connection: close" on
// their next one, and otherwise end when their idle timeout passes. A
// removed listener's connections are ended the same way.

// socket is one listening address.
type socket struct {
	key       string // the config's host:port, or the address of a systemd socket
	ln        net.Listener
	activated bool // passed by systemd; never closed on reload
	conns     chan net.Conn
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
}

// conn is a connection that knows the socket it came from, so that the
// handler can end keep-alive connections of a removed listener.
type conn struct {
	net.Conn
	s *socket
}

func newSocket(key string, ln net.Listener, activated bool) *socket {
	return &socket{key: key, ln: ln, activated: activated, conns: make(chan net.Conn), done: make(chan struct{})}
}

// accept runs the socket's accept loop until the socket is closed.
func (s *socket) accept(logger *slog.Logger) {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return
			}
			// Running out of file descriptors is worth waiting out, as
			// net/http does; anything else ends the loop.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				logger.Error("cannot accept a connection; retrying", "addr", s.key, "err", err, "retry_in_seconds", backoff.Seconds())
				select {
				case <-time.After(backoff):
				case <-s.done:
					return
				}
				continue
			}
			logger.Error("listener stopped", "addr", s.key, "err", err)
			return
		}
		backoff = 0
		select {
		case s.conns <- &conn{Conn: c, s: s}:
		case <-s.done:
			c.Close()
			return
		}
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
		s.ln.Close()
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

func (a *acceptor) Addr() net.Addr { return a.s.ln.Addr() }

// serverSettings are the fasthttp.Server fields the config sets.
type serverSettings struct {
	maxBody     int
	readTimeout time.Duration
	idleTimeout time.Duration
}

func settingsOf(cfg *schema.Config) serverSettings {
	return serverSettings{cfg.Server.MaxBodyBytes, cfg.Server.ReadTimeout, cfg.Server.IdleTimeout}
}

// serverGen is one fasthttp.Server and the acceptors it serves.
type serverGen struct {
	srv       *fasthttp.Server
	settings  serverSettings
	retired   atomic.Bool
	acceptors map[*socket]*acceptor
	loops     sync.WaitGroup
	running   atomic.Int32
}

// network owns the sockets and server generations. Only the reloader and
// start and shutdown, which never overlap with it, change it.
type network struct {
	logger  *slog.Logger
	handler func(g *serverGen) fasthttp.RequestHandler
	errors  func(ctx *fasthttp.RequestCtx, err error)

	mu        sync.Mutex
	sockets   map[string]*socket // bound from the config, by host:port
	activated []*socket          // passed by systemd
	gen       *serverGen
	retired   []*serverGen
	loops     sync.WaitGroup // accept loops
}

// listenPlan is what a reload changes on the network; prepare makes it
// and binds new sockets, commit applies it and cannot fail.
type listenPlan struct {
	opened   []*socket
	removed  []*socket
	settings serverSettings
}

// activatedListeners returns the sockets systemd passes (LISTEN_FDS), or
// none when it passes none.
func activatedListeners(logger *slog.Logger) ([]*socket, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("cannot use the sockets systemd passed: %w", err)
	}
	var out []*socket
	for _, ln := range lns {
		if ln == nil {
			continue // not a stream socket
		}
		logger.Info("using a socket passed by systemd", "addr", ln.Addr().String())
		out = append(out, newSocket(ln.Addr().String(), ln, true))
	}
	return out, nil
}

// matches reports whether a systemd socket listens where the config's
// listener would.
func matches(s *socket, l schema.Listener) bool {
	want, err := net.ResolveTCPAddr("tcp", l.HostPort())
	if err != nil {
		return false
	}
	got, ok := s.ln.Addr().(*net.TCPAddr)
	if !ok || got.Port != want.Port {
		return false
	}
	unspecified := func(ip net.IP) bool { return ip == nil || ip.IsUnspecified() }
	return got.IP.Equal(want.IP) || unspecified(got.IP) && unspecified(want.IP)
}

func (n *network) prepare(cfg *schema.Config) (*listenPlan, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := &listenPlan{settings: settingsOf(cfg)}
	want := map[string]bool{}
	for _, l := range cfg.Listeners {
		key := l.HostPort()
		want[key] = true
		if n.sockets[key] != nil || n.isActivated(l) {
			continue
		}
		ln, err := net.Listen("tcp", key)
		if err != nil {
			for _, s := range p.opened {
				s.ln.Close()
			}
			return nil, fmt.Errorf("cannot listen on %s: %w", key, err)
		}
		if tl := tlsConfig(cfg, l); tl != nil {
			ln = tls.NewListener(ln, tl)
		}
		p.opened = append(p.opened, newSocket(key, ln, false))
	}
	for key, s := range n.sockets {
		if !want[key] {
			p.removed = append(p.removed, s)
		}
	}
	return p, nil
}

func (n *network) isActivated(l schema.Listener) bool {
	for _, s := range n.activated {
		if matches(s, l) {
			return true
		}
	}
	return false
}

// abort closes the sockets a plan bound, for a reload that failed later.
func (p *listenPlan) abort() {
	for _, s := range p.opened {
		s.ln.Close()
	}
}

// commit serves the new sockets, starts a new server generation if the
// settings changed, and closes the removed sockets, in that order, so
// that a moved listener is open somewhere at every moment.
func (n *network) commit(p *listenPlan) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range p.opened {
		n.sockets[s.key] = s
		n.loops.Go(func() { s.accept(n.logger) })
	}
	if n.gen == nil || n.gen.settings != p.settings {
		old := n.gen
		n.gen = n.newGen(p.settings)
		for _, s := range n.all() {
			n.serve(n.gen, s)
		}
		if old != nil {
			old.retired.Store(true)
			for _, a := range old.acceptors {
				a.Close()
			}
			n.retired = append(n.retired, old)
		}
	} else {
		for _, s := range p.opened {
			n.serve(n.gen, s)
		}
	}
	for _, s := range p.removed {
		s.close()
		delete(n.sockets, s.key)
		n.logger.Info("listener closed", "addr", s.key)
	}
	// Forget retired generations with nothing left to serve.
	keep := n.retired[:0]
	for _, g := range n.retired {
		if g.running.Load() > 0 || g.srv.GetOpenConnectionsCount() > 0 {
			keep = append(keep, g)
		}
	}
	clear(n.retired[len(keep):])
	n.retired = keep
}

func (n *network) all() []*socket {
	out := append([]*socket(nil), n.activated...)
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

func (n *network) newGen(st serverSettings) *serverGen {
	g := &serverGen{settings: st, acceptors: map[*socket]*acceptor{}}
	g.srv = &fasthttp.Server{
		Handler:            n.handler(g),
		ErrorHandler:       n.errors,
		Name:               "aiassist",
		MaxRequestBodySize: st.maxBody,
		ReadTimeout:        st.readTimeout,
		IdleTimeout:        st.idleTimeout,
		CloseOnShutdown:    true,
		Logger:             fasthttpLogger{n.logger},
	}
	return g
}

func (n *network) serve(g *serverGen, s *socket) {
	a := &acceptor{s: s, done: make(chan struct{})}
	g.acceptors[s] = a
	g.running.Add(1)
	g.loops.Go(func() {
		defer g.running.Add(-1)
		if err := g.srv.Serve(a); err != nil {
			n.logger.Error("server stopped", "addr", s.key, "err", err)
		}
	})
}

// addrs returns the addresses served, for logs and the watchdog probe.
func (n *network) addrs() []net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []net.Addr
	for _, s := range n.all() {
		out = append(out, s.ln.Addr())
	}
	return out
}

// shutdown stops accepting on every socket, then lets every generation's
// connections finish their requests until ctx ends.
func (n *network) shutdown(ctx context.Context) {
	n.mu.Lock()
	gens := append([]*serverGen{n.gen}, n.retired...)
	for _, s := range n.all() {
		s.close()
	}
	n.mu.Unlock()
	n.loops.Wait()
	var wg sync.WaitGroup
	for _, g := range gens {
		if g == nil {
			continue
		}
		wg.Go(func() {
			if err := g.srv.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				n.logger.Error("shutdown", "err", err)
			}
			g.loops.Wait()
		})
	}
	wg.Wait()
}

// endsConnection reports whether the connection a request came in on
// should be closed after the response: its listener was removed, or its
// server generation retired, or the daemon is stopping.
func endsConnection(g *serverGen, c net.Conn) bool {
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

// tlsConfig is the hook for TLS: it returns the TLS configuration of a
// listener, or nil to serve plain HTTP. No listener has TLS settings yet.
// A certificate swap on reload should return a config whose
// GetCertificate reads the current state, so that open listeners pick up
// the new certificate without being rebound.
func tlsConfig(cfg *schema.Config, l schema.Listener) *tls.Config {
	return nil
}

// fasthttpLogger sends fasthttp's own messages to the daemon's log.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
