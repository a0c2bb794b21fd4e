// Package listener owns the daemon's listening sockets, which outlive
// reloads, and the generations of fasthttp.Server that serve them.
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
//
// Sockets are keyed by the address they are bound to, resolved, so that
// "localhost:8080" and "127.0.0.1:8080" are one socket and a config that
// changes one spelling into the other keeps it instead of binding twice.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/valyala/fasthttp"
)

// maxHeaderBytes bounds a request's line and headers together; a browser
// with cookies stays well below it, a JWT with many claims too.
const maxHeaderBytes = 16 << 10

// Settings are what the config sets of the HTTP server.
type Settings struct {
	MaxBodyBytes int
	// HeaderTimeout bounds reading a request's headers, from the first
	// byte (or the connection's start): a slowloris client dripping
	// header bytes is dropped after it.
	HeaderTimeout time.Duration
	// ReadTimeout bounds reading the body, once the headers are in.
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// MaxConns bounds open client connections across all listeners, and
	// MaxConnsPerIP those from one client address; 0 is no bound (but
	// the file-descriptor limit less a reserve always bounds the total).
	MaxConns      int
	MaxConnsPerIP int
}

// serverSettings are the Settings a fasthttp.Server is built from; the
// connection limits apply without a new server.
type serverSettings struct {
	maxBody       int
	headerTimeout time.Duration
	readTimeout   time.Duration
	idleTimeout   time.Duration
}

func (s Settings) server() serverSettings {
	return serverSettings{s.MaxBodyBytes, s.HeaderTimeout, s.ReadTimeout, s.IdleTimeout}
}

// Manager owns the sockets and server generations. Prepare, Commit, Abort
// and Shutdown must not run concurrently with each other (the daemon's
// reloader is their only caller); Addrs, Health and the handlers may run
// at any time.
type Manager struct {
	logger  *slog.Logger
	handler func(g *Gen) fasthttp.RequestHandler
	errors  func(ctx *fasthttp.RequestCtx, err error)

	limits *connLimits

	mu        sync.Mutex
	sockets   map[string]*socket // bound from the config, by resolved address
	activated []*socket          // passed by systemd
	gen       *Gen
	retired   []*Gen
	loops     sync.WaitGroup // accept loops
}

// New returns a Manager that serves connections with handler (called once
// per server generation) and answers errors fasthttp meets before the
// handler with errs. Its connection series go to set.
func New(logger *slog.Logger, handler func(g *Gen) fasthttp.RequestHandler, errs func(*fasthttp.RequestCtx, error), set *metrics.Set) *Manager {
	return &Manager{logger: logger, handler: handler, errors: errs, sockets: map[string]*socket{}, limits: newConnLimits(set)}
}

// UseActivated takes the sockets systemd passes (LISTEN_FDS), if any. A
// config listener at the address of one is served on it instead of being
// bound again, and it is never closed on reload.
func (m *Manager) UseActivated() error {
	lns, err := activation.Listeners()
	if err != nil {
		return fmt.Errorf("cannot use the sockets systemd passed: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ln := range lns {
		if ln == nil {
			continue // not a stream socket
		}
		m.logger.Info("using a socket passed by systemd", "addr", ln.Addr().String())
		s := newSocket(ln.Addr().String(), ln, true, m.limits)
		m.activated = append(m.activated, s)
	}
	return nil
}

// Plan is what a reload changes on the network. Prepare makes it and binds
// the new sockets; Commit applies it and cannot fail; Abort undoes
// Prepare.
type Plan struct {
	m        *Manager
	opened   []*socket
	removed  []*socket
	settings Settings
	// tls is each wanted socket's TLS configuration from this load; nil
	// serves plain HTTP.
	tls map[string]*tls.Config
}

// resolve returns the key of a listener address: the address net.Listen
// would bind, so that two spellings of one address compare equal.
func resolve(hostport string) (string, error) {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Prepare binds the addresses not bound yet, reads every listener's TLS
// files, and plans to close the sockets no longer listed. On error nothing
// changes. (A socket whose listener died binds itself again; see Health.)
func (m *Manager) Prepare(specs []Spec, settings Settings) (*Plan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := &Plan{m: m, settings: settings, tls: map[string]*tls.Config{}}
	want := map[string]bool{}
	for i, spec := range specs {
		key, err := resolve(spec.Addr)
		if err != nil {
			p.Abort()
			return nil, fmt.Errorf("listeners.%d: cannot listen on %s: %w", i, spec.Addr, err)
		}
		if want[key] {
			continue
		}
		want[key] = true
		if spec.TLS != nil {
			c, err := loadTLS(spec.TLS)
			if err != nil {
				p.Abort()
				return nil, fmt.Errorf("listeners.%d.tls: %w", i, err)
			}
			p.tls[key] = c
		}
		if m.sockets[key] != nil || m.activatedAt(key) != nil {
			continue
		}
		ln, err := net.Listen("tcp", key)
		if err != nil {
			p.Abort()
			return nil, fmt.Errorf("listeners.%d: cannot listen on %s: %w", i, spec.Addr, err)
		}
		p.opened = append(p.opened, newSocket(key, ln, false, m.limits))
	}
	for key, s := range m.sockets {
		if !want[key] {
			p.removed = append(p.removed, s)
		}
	}
	return p, nil
}

// activatedAt returns the systemd socket that listens at key, or nil.
func (m *Manager) activatedAt(key string) *socket {
	want, err := net.ResolveTCPAddr("tcp", key)
	if err != nil {
		return nil
	}
	for _, s := range m.activated {
		got, ok := s.addr().(*net.TCPAddr)
		if !ok || got.Port != want.Port {
			continue
		}
		unspecified := func(ip net.IP) bool { return ip == nil || ip.IsUnspecified() }
		if got.IP.Equal(want.IP) || unspecified(got.IP) && unspecified(want.IP) {
			return s
		}
	}
	return nil
}

// Abort closes the sockets the plan bound, for a reload that failed later.
func (p *Plan) Abort() {
	for _, s := range p.opened {
		s.ln.Close()
	}
	p.opened = nil
}

// Commit serves the new sockets, starts a new server generation if the
// settings changed, and closes the removed sockets, in that order, so that
// a moved listener is open somewhere at every moment.
func (p *Plan) Commit() {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range p.opened {
		m.sockets[s.key] = s
	}
	// TLS first, so a new socket's first connection already has it. A
	// systemd socket takes the TLS of the listener at its address.
	for _, s := range m.all() {
		key := s.key
		if s.activated {
			key = ""
			for k := range p.tls {
				if m.activatedAt(k) == s {
					key = k
				}
			}
		}
		s.tls.Store(p.tls[key])
	}
	for _, s := range p.opened {
		m.startAccept(s)
	}
	m.limits.max.Store(int64(p.settings.MaxConns))
	m.limits.maxPerIP.Store(int64(p.settings.MaxConnsPerIP))
	if m.gen == nil || m.gen.settings != p.settings.server() {
		old := m.gen
		m.gen = m.newGen(p.settings.server())
		for _, s := range m.all() {
			m.serve(m.gen, s)
		}
		if old != nil {
			old.retired.Store(true)
			for _, a := range old.acceptors {
				a.Close()
			}
			m.retired = append(m.retired, old)
		}
	} else {
		for _, s := range p.opened {
			m.serve(m.gen, s)
		}
	}
	for _, s := range p.removed {
		s.close()
		delete(m.sockets, s.key)
		m.logger.Info("listener closed", "addr", s.key)
	}
	// Forget retired generations with nothing left to serve.
	keep := m.retired[:0]
	for _, g := range m.retired {
		if g.running.Load() > 0 || g.srv.GetOpenConnectionsCount() > 0 {
			keep = append(keep, g)
		}
	}
	clear(m.retired[len(keep):])
	m.retired = keep
}

func (m *Manager) startAccept(s *socket) {
	m.loops.Go(func() { s.accept(m.logger) })
}

// StartActivated starts the accept loops of the sockets systemd passed;
// the first Commit serves them.
func (m *Manager) StartActivated() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.activated {
		m.startAccept(s)
	}
}

func (m *Manager) all() []*socket {
	out := append([]*socket(nil), m.activated...)
	for _, s := range m.sockets {
		out = append(out, s)
	}
	return out
}

func (m *Manager) newGen(st serverSettings) *Gen {
	g := &Gen{settings: st, acceptors: map[*socket]*acceptor{}}
	g.srv = &fasthttp.Server{
		Handler:            m.handler(g),
		ErrorHandler:       m.errors,
		Name:               "aiassist",
		MaxRequestBodySize: st.maxBody,
		// The request line and headers must fit: more is 431.
		ReadBufferSize: maxHeaderBytes,
		// fasthttp's ReadTimeout runs from a request's first byte to
		// the end of its headers here; HeaderReceived then gives the
		// body its own deadline.
		ReadTimeout: st.headerTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: st.readTimeout}
		},
		IdleTimeout: st.idleTimeout,
		// The body is read as it arrives, so memory follows the bytes
		// received, not the Content-Length a client promises.
		StreamRequestBody: true,
		// fasthttp's own error lines would otherwise quote the request,
		// headers and all: an X-API-Key of a client that hung up
		// mid-header would reach the log.
		SecureErrorLogMessage: true,
		CloseOnShutdown:       true,
		Logger:                FasthttpLogger(m.logger),
	}
	return g
}

func (m *Manager) serve(g *Gen, s *socket) {
	a := &acceptor{s: s, done: make(chan struct{})}
	g.acceptors[s] = a
	g.running.Add(1)
	g.loops.Go(func() {
		defer g.running.Add(-1)
		if err := g.srv.Serve(a); err != nil {
			m.logger.Error("server stopped", "addr", s.key, "err", err)
		}
	})
}

// Addrs returns the addresses served, for logs and the watchdog probe.
func (m *Manager) Addrs() []net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []net.Addr
	for _, s := range m.all() {
		out = append(out, s.addr())
	}
	return out
}

// Endpoint is a served address, as the watchdog probes it.
type Endpoint struct {
	Addr net.Addr
	// TLS is the listener's TLS configuration, nil for plain HTTP.
	TLS *tls.Config
}

// Endpoints returns what is served where, for the watchdog probe.
func (m *Manager) Endpoints() []Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Endpoint
	for _, s := range m.all() {
		out = append(out, Endpoint{Addr: s.addr(), TLS: s.tls.Load()})
	}
	return out
}

// Health returns an error naming every socket whose accept loop died and
// has not been reopened (yet), or nil.
func (m *Manager) Health() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var dead []string
	for _, s := range m.all() {
		if err := s.deadErr(); err != nil {
			dead = append(dead, s.key+": "+err.Error())
		}
	}
	if len(dead) == 0 {
		return nil
	}
	return errors.New("listener not accepting: " + strings.Join(dead, "; "))
}

// Shutdown stops accepting on every socket, then lets every generation's
// connections finish their requests until ctx ends.
func (m *Manager) Shutdown(ctx context.Context) {
	m.mu.Lock()
	gens := append([]*Gen{m.gen}, m.retired...)
	for _, s := range m.all() {
		s.close()
	}
	m.mu.Unlock()
	m.loops.Wait()
	var wg sync.WaitGroup
	for _, g := range gens {
		if g == nil {
			continue
		}
		wg.Go(func() {
			if err := g.srv.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				m.logger.Error("shutdown", "err", err)
			}
			g.loops.Wait()
		})
	}
	wg.Wait()
}

// FasthttpLogger sends fasthttp's own messages to the daemon's log,
// redacted: the servers set SecureErrorLogMessage, and whatever still
// looks like a credential is cut out, in case a message quotes one.
func FasthttpLogger(l *slog.Logger) fasthttp.Logger { return fasthttpLogger{l} }

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(Redact(fmt.Sprintf(format, args...)), "component", "fasthttp")
}

// credential matches what may carry a secret in a message: an API key,
// a bearer or basic credential, a JWT, or the value of a header that holds
// one.
var credential = regexp.MustCompile(`(?i)aia_[a-z0-9]+_[a-z0-9]+|(bearer|basic)\s+[^\s"',;]+|ey[a-z0-9_-]{8,}\.[a-z0-9_-]+\.[a-z0-9_-]*|(x-api-key|authorization|cookie)\s*:\s*[^\r\n"]*`)

// Redact replaces every credential-looking part of s with "[redacted]".
func Redact(s string) string {
	return credential.ReplaceAllString(s, "[redacted]")
}
