// Package api serves the HTTP API with fasthttp. It owns the request path
// that every route shares; the routes themselves live in one package per
// protocol: kserve (KServe v2 for tensor models, /v2/...), openai (the
// /v1 routes for causal-lm models: OpenAI-compatible completions, chat and
// models, and the seed's /v1/generate), and here the metrics route. route
// holds what they share: the State snapshot, the Route type, one strict
// JSON decoder, one error type and writer, and the cap on echoed values.
//
// A request's way, top to bottom (Server.Handler, then Server.serve):
//
//  1. Handler takes the current State (one Acquire) and a request id.
//  2. The route table matches the path: no match is the one 404.
//  3. The route's method is checked: 405 with Allow.
//  4. The route's Resolve names the model the request is for (from the
//     path, or from the body it decodes) without running anything.
//  5. The gate: the one point where the gateway's checks go (screening,
//     IP allow list, authenticate, ACL for the resolved model, rate
//     limit), marked in serve. There they have the route's name, the
//     model name and the request, and refuse with a *route.Error; nothing
//     has run yet.
//  6. The Handler from Resolve does the work and answers, or returns a
//     route.Stream that is written after Handler returns, holding the
//     State until it ends.
//  7. Every answer, error or stream is counted and logged once, in finish.
package api

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/api/kserve"
	"github.com/aiassist/aiassist/daemon/api/openai"
	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/daemon/api/ui"
	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
	"github.com/aiassist/aiassist/daemon/observe"
)

// State is what one configuration generation serves; see route.State.
type State = route.State

// Options configures a Server.
type Options struct {
	// Acquire returns the current state and a function to call when the
	// request is done with it, so a reload can wait for in-flight requests.
	Acquire func() (*State, func())
	// Ready reports whether the daemon serves (false while starting and
	// stopping).
	Ready   func() bool
	Logger  *slog.Logger
	Metrics *metrics.Set
	Version string
	// Status builds the document /status.json serves for a state; nil
	// serves the pages without it.
	Status func(st *State) any
}

// Server handles requests. It holds no configuration of its own.
type Server struct {
	opts     Options
	routes   route.Table
	metrics  *route.Route
	requests *observe.Requests
	access   observe.AccessLog
	idPrefix string
	idSeq    atomic.Uint64
	started  time.Time
}

// New returns a Server.
func New(opts Options) *Server {
	var p [4]byte
	rand.Read(p[:])
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	s := &Server{
		opts: opts, requests: observe.NewRequests(opts.Metrics), access: observe.AccessLog{Logger: opts.Logger},
		idPrefix: hex.EncodeToString(p[:]) + "-", started: time.Now(),
	}
	s.routes.Add(kserve.Routes(kserve.Options{Version: opts.Version, Ready: opts.Ready})...)
	s.routes.Add(openai.Routes(s.started)...)
	status := opts.Status
	if status == nil {
		status = func(*State) any { return struct{}{} }
	}
	s.routes.Add(ui.Routes(status)...)
	s.metrics = &route.Route{Name: "metrics", Method: "GET", Resolve: func(*route.Request) (route.Handler, error) {
		return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
			r.Ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
			observe.WritePrometheus(r.Ctx)
			return nil, nil
		}), nil
	}}
	return s
}

// Traffic is the cumulative count of model requests, for the status page.
func (s *Server) Traffic() observe.Totals { return s.requests.Totals() }

// Handler is the fasthttp request handler.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	st, release := s.opts.Acquire()
	r := &route.Request{Ctx: ctx, State: st, ID: s.requestID(ctx), Start: start}
	ctx.Response.Header.Set("X-Request-Id", r.ID)
	stream, err := s.safeServe(r)
	if err != nil {
		e := route.ErrorFrom(err, st)
		r.Reason = e.Code
		stream = nil
		route.WriteError(ctx, e)
	}
	e := observe.Entry{RequestID: r.ID, Status: ctx.Response.StatusCode(), BytesIn: bytesIn(ctx)}
	if st.AccessLog {
		// Only the log line needs these copies.
		e.Method, e.Path, e.Remote = string(ctx.Method()), string(ctx.Path()), ctx.RemoteIP().String()
		e.ClientIP = s.clientIP(r).String()
	}
	if stream == nil {
		release()
		e.BytesOut = len(ctx.Response.Body())
		s.finish(r, e)
		return
	}
	// fasthttp runs the stream writer on its own goroutine and sends what
	// it writes as chunks, after Handler has returned. The request keeps
	// its state, and with it the model, until the stream ends, and is
	// counted and logged then. ctx must not be touched from here on.
	ctx.SetBodyStreamWriter(func(bw *bufio.Writer) {
		defer release()
		w := route.NewSSE(bw)
		// The stream runs on a goroutine of fasthttp's that recovers
		// nothing: a panic here would end the process.
		func() {
			defer func() {
				if p := recover(); p != nil {
					s.logPanic(r, p)
					r.Reason = "internal_error"
				}
			}()
			stream.Write(w)
		}()
		e.BytesOut = w.Written()
		s.finish(r, e)
	})
}

// bytesIn is the size of the request body: read, or, for one no route
// read, what its Content-Length says (reading it just to count it would
// let anyone make the server read a body).
func bytesIn(ctx *fasthttp.RequestCtx) int {
	if ctx.RequestBodyStream() != nil {
		return max(ctx.Request.Header.ContentLength(), 0)
	}
	return len(ctx.Request.Body())
}

// safeServe runs serve and turns a panic into a 500 answer: fasthttp does
// not recover handlers' panics, so a bug one request hits would otherwise
// take the daemon down with every request in flight.
func (s *Server) safeServe(r *route.Request) (stream route.Stream, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logPanic(r, p)
			// Drop whatever the route had set, but keep the request id.
			r.Ctx.Response.Reset()
			r.Ctx.Response.Header.Set("X-Request-Id", r.ID)
			stream, err = nil, route.NewError(fasthttp.StatusInternalServerError, "server_error", "internal_error", "internal error; the daemon's log has the details under request_id "+strconv.Quote(r.ID))
		}
	}()
	return s.serve(r)
}

// serve is a request's way through the API; the package doc names its
// steps.
func (s *Server) serve(r *route.Request) (route.Stream, error) {
	if r.State.Gate != nil {
		// A CORS preflight is answered before routing: it carries no
		// credential.
		if done, err := s.preflight(r); done || err != nil {
			return nil, err
		}
	}
	rt := s.match(r)
	if rt == nil {
		r.Route = "other"
		return nil, route.NoRoute(string(r.Ctx.Path()))
	}
	r.Route = rt.Name
	if err := allow(r.Ctx, rt.Method); err != nil {
		return nil, err
	}
	// The gate (step 5), in two parts around Resolve. First who is
	// asking, from the headers alone; the body is read, as it arrives,
	// and scanned only for a caller let through.
	kind, content := gateRoute(rt)
	if err := s.admit(r, rt, kind, content); err != nil {
		return nil, err
	}
	h, err := rt.Resolve(r)
	if err != nil {
		return nil, err
	}
	// Then what it asks for: the ACL for r.Model, and the rate limits.
	if err := s.authorize(r, kind); err != nil {
		return nil, err
	}
	return h.Serve(r)
}

// gateRoute is how the gate treats a route: health needs no credential,
// metrics one only if configured, everything else is inference.
func gateRoute(rt *route.Route) (gate.Route, gate.Content) {
	switch {
	case strings.HasPrefix(rt.Name, "/v2/health/"):
		return gate.RouteHealth, gate.ContentNone
	case rt.Name == "metrics":
		return gate.RouteMetrics, gate.ContentNone
	case ui.IsPage(rt.Name):
		return gate.RoutePage, gate.ContentNone
	case rt.Name == ui.StatusRoute:
		return gate.RouteStatus, gate.ContentNone
	case rt.Name == "/v2/models/{name}/infer":
		return gate.RouteInference, gate.ContentKServe
	case rt.Method == "POST":
		return gate.RouteInference, gate.ContentJSON
	}
	return gate.RouteInference, gate.ContentNone
}

// admit reads the body and runs the gate's checks that need no model:
// screening, the IP allow list, authentication and scope.
func (s *Server) admit(r *route.Request, rt *route.Route, kind gate.Route, content gate.Content) error {
	g := r.State.Gate
	if g == nil {
		if rt.Method == "POST" {
			return route.ReadBody(r.Ctx)
		}
		return nil
	}
	if content != gate.ContentNone {
		// The body is bounded by server.max_body_bytes and
		// read_timeout; the gate scans it only once the caller is
		// authenticated.
		if err := route.ReadBody(r.Ctx); err != nil {
			return err
		}
	}
	gr := gate.FromFastHTTP(r.Ctx, isLoopback(r.Ctx.LocalAddr()), kind, "", content)
	// Worked out once: the gate, the limits and the log all use it.
	gr.Client = s.clientIP(r)
	p, ref := g.Check(gr)
	if ref != nil {
		return route.FromRefusal(ref)
	}
	r.Principal = p
	if origin := r.Ctx.Request.Header.Peek("Origin"); len(origin) > 0 {
		gate.SetCORS(r.Ctx, g.CORS(string(origin), "", ""))
	}
	return nil
}

// authorize checks the resolved model against the principal's models and
// admits an inference request under the rate limits.
func (s *Server) authorize(r *route.Request, kind gate.Route) error {
	if p := r.Principal; p != nil && r.Model != "" && !p.Allows(r.Model) {
		e := route.NewError(fasthttp.StatusForbidden, "permission_error", "model_not_allowed", "this credential may not call model "+route.Quote(r.Model))
		e.Param = "model"
		return e
	}
	if r.State.Limits == nil || kind != gate.RouteInference {
		return nil
	}
	req := limit.Request{IP: s.clientIP(r)}
	if p := r.Principal; p != nil && p.Kind != gate.KindAnonymous {
		req.Authenticated, req.Class = true, p.Limit
	}
	t, ref := r.State.Limits.Admit(req)
	if ref != nil {
		return route.FromLimit(ref)
	}
	r.Ticket = t
	t.VisitHeaders(r.Ctx.Response.Header.SetBytesV)
	return nil
}

// clientIP is the address the gate checks, the limits key unauthenticated
// traffic by and the log names: the peer, or with a gate the address
// X-Forwarded-For gives from trusted proxies. It is worked out once per
// request.
func (s *Server) clientIP(r *route.Request) netip.Addr {
	if r.ClientIP.IsValid() {
		return r.ClientIP
	}
	var peer netip.Addr
	if a, ok := r.Ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr().Unmap()
	}
	if g := r.State.Gate; g != nil {
		peer = g.ClientIP(peer, &r.Ctx.Request.Header)
	}
	r.ClientIP = peer
	return peer
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return !ok || ta.IP.IsLoopback()
}

// preflight answers a CORS preflight for a listed origin (204) or refuses
// one from another (403). It reports whether the request was one.
func (s *Server) preflight(r *route.Request) (bool, error) {
	h := &r.Ctx.Request.Header
	if string(h.Method()) != "OPTIONS" {
		return false, nil
	}
	d := r.State.Gate.CORS(string(h.Peek("Origin")), "OPTIONS", string(h.Peek("Access-Control-Request-Method")))
	if !d.Preflight {
		return false, nil
	}
	r.Route = "preflight"
	if d.Refusal != nil {
		return true, route.FromRefusal(d.Refusal)
	}
	gate.SetCORS(r.Ctx, d)
	r.Ctx.SetStatusCode(fasthttp.StatusNoContent)
	return true, nil
}

// match finds the route for the request's path. The metrics path comes
// from the config, so it is looked at first.
func (s *Server) match(r *route.Request) *route.Route {
	path := string(r.Ctx.Path())
	if r.State.MetricsPath != "" && path == r.State.MetricsPath {
		return s.metrics
	}
	return s.routes.Match(r, path)
}

// allow answers 405 unless the request uses method; GET takes HEAD too.
func allow(ctx *fasthttp.RequestCtx, method string) error {
	m := string(ctx.Method())
	if m == method || (method == "GET" && m == "HEAD") {
		return nil
	}
	ctx.Response.Header.Set("Allow", method)
	return route.NewError(fasthttp.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use "+method+" for "+route.Quote(string(ctx.Path())))
}

func (s *Server) logPanic(r *route.Request, p any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Error("panic while serving a request", "request_id", r.ID, "route", r.Route, "model", r.Model, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
}

// finish counts and logs a request once its response is written.
func (s *Server) finish(r *route.Request, e observe.Entry) {
	if n := r.TokensIn + r.TokensOut; n > 0 {
		r.Ticket.Charge(n)
		s.countUsage(r)
	}
	e.TokensIn, e.TokensOut, e.QueueWait = r.TokensIn, r.TokensOut, r.QueueWait
	r.Ticket.Release()
	d := time.Since(r.Start)
	if r.Route != "" {
		s.requests.Observe(r.Route, r.Model, e.Status, r.Reason, d)
	}
	if r.State.AccessLog {
		e.Route, e.Model, e.Reason, e.Duration, e.Extra = r.Route, r.Model, r.Reason, d, r.Extra
		if p := r.Principal; p != nil {
			e.Auth, e.Principal, e.Key, e.KeyID, e.Issuer = p.Kind, p.Name, p.KeyName, p.KeyID, p.Issuer
		}
		s.access.Log(e)
	}
}

// countUsage adds a generation's tokens to the usage series of its model
// and principal: an API key by its config name, JWT principals together
// per issuer, so the labels stay bounded by the config.
func (s *Server) countUsage(r *route.Request) {
	who := `key="",issuer=""`
	if p := r.Principal; p != nil {
		switch {
		case p.KeyName != "":
			who = `key=` + strconv.Quote(p.KeyName) + `,issuer=""`
		case p.Kind != gate.KindAnonymous:
			who = `key="",issuer=` + strconv.Quote(p.Issuer)
		}
	}
	labels := `model=` + strconv.Quote(r.Model) + `,` + who
	if r.TokensIn > 0 {
		s.opts.Metrics.GetOrCreateCounter(`aiassist_request_tokens_total{` + labels + `,direction="in"}`).Add(r.TokensIn)
	}
	if r.TokensOut > 0 {
		s.opts.Metrics.GetOrCreateCounter(`aiassist_request_tokens_total{` + labels + `,direction="out"}`).Add(r.TokensOut)
	}
}

// requestID keeps a caller's X-Request-Id when it is sane, so logs can be
// joined across hops, and makes one up otherwise.
func (s *Server) requestID(ctx *fasthttp.RequestCtx) string {
	if id := ctx.Request.Header.Peek("X-Request-Id"); len(id) > 0 && len(id) <= 128 {
		ok := true
		for _, c := range id {
			if c <= ' ' || c > '~' || c == '"' || c == '\\' {
				ok = false
				break
			}
		}
		if ok {
			return string(id)
		}
	}
	return s.idPrefix + strconv.FormatUint(s.idSeq.Add(1), 36)
}

// ErrorHandler answers errors fasthttp meets before the handler runs, in
// the same JSON shape; fasthttp would otherwise send 400 for a body that is
// too large.
func (s *Server) ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	st, release := s.opts.Acquire()
	defer release()
	id := s.requestID(ctx)
	ctx.Response.Header.Set("X-Request-Id", id)
	var e *route.Error
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = route.NewError(fasthttp.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large", "request body is larger than server.max_body_bytes")
	case isTimeout(err):
		e = route.NewError(fasthttp.StatusRequestTimeout, "invalid_request_error", "request_timeout", "the request's headers did not arrive within server.header_timeout")
	case errors.As(err, &small):
		e = route.NewError(fasthttp.StatusRequestHeaderFieldsTooLarge, "invalid_request_error", "header_too_large", "the request line and headers are larger than the server reads")
	default:
		e = route.NewError(fasthttp.StatusBadRequest, "invalid_request_error", "bad_request", "cannot parse the HTTP request: "+parseError(err))
	}
	if e.Status == fasthttp.StatusRequestHeaderFieldsTooLarge || e.Status == fasthttp.StatusRequestEntityTooLarge {
		drain(ctx.Conn())
	}
	route.WriteError(ctx, e)
	ctx.SetConnectionClose()
	s.requests.Observe("", "", e.Status, e.Code, 0)
	// These requests never reach Handler; without this line a client
	// refused with 413 would leave no trace in the access log.
	if st.AccessLog {
		s.access.Log(observe.Entry{
			RequestID: id, Method: string(ctx.Method()), Path: string(ctx.Path()), Status: e.Status, Reason: e.Code,
			Remote: ctx.RemoteIP().String(), BytesOut: len(ctx.Response.Body()),
		})
	}
}

// drain reads and drops what the client is still sending, for a moment and
// up to a bound, before a refused request's connection is closed: closing
// with unread bytes makes the kernel reset the connection, and the client
// then often never reads the 431 or 413 (nginx's lingering close).
func drain(c net.Conn) {
	if c == nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	io.CopyN(io.Discard, c, 1<<20)
	c.SetReadDeadline(time.Time{})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseError is fasthttp's reason without the request bytes it quotes or
// appends (`invalid header value "…"`, "buffer size=…, contents: …"):
// those are the client's headers, which may hold a key.
func parseError(err error) string {
	msg := err.Error()
	for _, cut := range []string{`"`, "buffer size=", "(n="} {
		if i := strings.Index(msg, cut); i >= 0 {
			msg = msg[:i]
		}
	}
	return strings.TrimRight(msg, " :.,")
}
