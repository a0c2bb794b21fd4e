// Package api serves the HTTP API with fasthttp: KServe v2 tensor
// inference, text generation (/v1/generate and the OpenAI-compatible
// /v1/completions, /v1/chat/completions and /v1/models, streamed as
// server-sent events), health, and metrics. It reads everything it serves
// from a State snapshot that the daemon swaps on reload.
package api

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/observe"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
)

// State is what one configuration generation serves. It is never changed
// after the daemon publishes it.
type State struct {
	Generation uint64
	Models     map[string]*engine.TensorModel
	// Generators are the causal-lm models, by name.
	Generators map[string]*generate.Model
	// DefaultModel is the generator a /v1 request without "model" gets;
	// "" makes such requests name one.
	DefaultModel string
	// LogPrompts adds the prompt and the generated text to the access
	// log lines of generation requests.
	LogPrompts     bool
	RequestTimeout time.Duration
	// MetricsPath is where metrics are served; "" turns them off.
	MetricsPath string
	AccessLog   bool
}

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
}

// Server handles requests. It holds no configuration of its own.
type Server struct {
	opts     Options
	requests *observe.Requests
	access   observe.AccessLog
	idPrefix string
	idSeq    atomic.Uint64
	started  time.Time
	// streamHook, when set by a test, runs after each chunk a stream has
	// written.
	streamHook func()
}

// New returns a Server.
func New(opts Options) *Server {
	var p [4]byte
	rand.Read(p[:])
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	return &Server{opts: opts, requests: observe.NewRequests(opts.Metrics), access: observe.AccessLog{Logger: opts.Logger}, idPrefix: hex.EncodeToString(p[:]) + "-", started: time.Now()}
}

// call is what the access log and metrics learn about one request.
type call struct {
	id     string
	start  time.Time
	route  string
	model  string
	reason string
	// extra are added to the access log line.
	extra []slog.Attr
	// stream, when a route sets it, writes the response body after
	// Handler returns; the request ends when it does.
	stream func(w *sseWriter)
}

// Handler is the fasthttp request handler.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	st, release := s.opts.Acquire()
	id := s.requestID(ctx)
	ctx.Response.Header.Set("X-Request-Id", id)
	c := &call{id: id, start: start}
	if err := s.safeRoute(ctx, st, c); err != nil {
		e := errorFrom(err)
		c.reason = e.Code
		c.stream = nil
		writeError(ctx, e)
	}
	e := observe.Entry{RequestID: id, Status: ctx.Response.StatusCode(), BytesIn: len(ctx.Request.Body())}
	if st.AccessLog {
		// Only the log line needs these copies.
		e.Method, e.Path, e.Remote = string(ctx.Method()), string(ctx.Path()), ctx.RemoteIP().String()
	}
	if c.stream == nil {
		release()
		e.BytesOut = len(ctx.Response.Body())
		s.finish(st, c, e)
		return
	}
	// fasthttp runs the stream writer on its own goroutine and sends what
	// it writes as chunks, after Handler has returned. The request keeps
	// its state, and with it the model, until the stream ends, and is
	// counted and logged then. ctx must not be touched from here on.
	stream := c.stream
	ctx.SetBodyStreamWriter(func(bw *bufio.Writer) {
		defer release()
		w := &sseWriter{w: bw}
		// The stream runs on a goroutine of fasthttp's that recovers
		// nothing: a panic here would end the process.
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.logPanic(c, r)
					c.reason = "internal_error"
				}
			}()
			stream(w)
		}()
		e.BytesOut = w.n
		s.finish(st, c, e)
	})
}

// safeRoute runs route and turns a panic into a 500 answer: fasthttp does
// not recover handlers' panics, so a bug one request hits would otherwise
// take the daemon down with every request in flight.
func (s *Server) safeRoute(ctx *fasthttp.RequestCtx, st *State, c *call) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logPanic(c, r)
			// Drop whatever the route had set, but keep the request id.
			ctx.Response.Reset()
			ctx.Response.Header.Set("X-Request-Id", c.id)
			err = newError(fasthttp.StatusInternalServerError, "server_error", "internal_error", "internal error; the daemon's log has the details under request_id "+strconv.Quote(c.id))
		}
	}()
	return s.route(ctx, st, c)
}

func (s *Server) logPanic(c *call, r any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Error("panic while serving a request", "request_id", c.id, "route", c.route, "model", c.model, "err", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

// finish counts and logs a request once its response is written.
func (s *Server) finish(st *State, c *call, e observe.Entry) {
	d := time.Since(c.start)
	if c.route != "" {
		s.requests.Observe(c.route, c.model, e.Status, c.reason, d)
	}
	if st.AccessLog {
		e.Route, e.Model, e.Reason, e.Duration, e.Extra = c.route, c.model, c.reason, d, c.extra
		s.access.Log(e)
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
	var e *Error
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		e = newError(fasthttp.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large", "request body is larger than server.max_body_bytes")
	} else {
		e = newError(fasthttp.StatusBadRequest, "invalid_request_error", "bad_request", "cannot parse the HTTP request: "+err.Error())
	}
	writeError(ctx, e)
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

func (s *Server) route(ctx *fasthttp.RequestCtx, st *State, c *call) error {
	path := string(ctx.Path())
	switch {
	case st.MetricsPath != "" && path == st.MetricsPath:
		c.route = "metrics"
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		ctx.SetContentType("text/plain; version=0.0.4")
		metrics.WritePrometheus(ctx, true)
		return nil
	case path == "/v2/health/live":
		c.route = path
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		return writeJSON(ctx, 200, map[string]bool{"live": true})
	case path == "/v2/health/ready":
		c.route = path
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		ready := s.opts.Ready == nil || s.opts.Ready()
		status := 200
		if !ready {
			status = fasthttp.StatusServiceUnavailable
		}
		return writeJSON(ctx, status, map[string]bool{"ready": ready})
	case path == "/v2":
		c.route = path
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		return writeJSON(ctx, 200, map[string]any{"name": "aiassist", "version": s.opts.Version, "extensions": []string{"binary_tensor_data"}})
	case strings.HasPrefix(path, "/v2/models/"):
		return s.routeModel(ctx, st, c, strings.TrimPrefix(path, "/v2/models/"))
	case strings.HasPrefix(path, "/v1/"):
		return s.routeV1(ctx, st, c, path)
	}
	c.route = "other"
	return newError(fasthttp.StatusNotFound, "not_found_error", "not_found", "no route for "+strconv.Quote(path))
}

// routeModel serves /v2/models/{name}[/versions/{v}][/ready|/infer].
func (s *Server) routeModel(ctx *fasthttp.RequestCtx, st *State, c *call, rest string) error {
	name, action, _ := strings.Cut(rest, "/")
	if strings.HasPrefix(action, "versions/") {
		// Every model has the one version "1".
		parts := strings.SplitN(action, "/", 3)
		if len(parts) < 2 || parts[1] != "1" {
			c.route = "/v2/models/{name}/versions"
			return newError(fasthttp.StatusNotFound, "not_found_error", "version_not_found", "only version \"1\" is served")
		}
		action = ""
		if len(parts) == 3 {
			action = parts[2]
		}
	}
	m := st.Models[name]
	if m != nil {
		c.model = name
	}
	switch action {
	case "":
		c.route = "/v2/models/{name}"
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		if m == nil {
			return modelNotFound(name)
		}
		return writeJSON(ctx, 200, describeModel(m))
	case "ready":
		c.route = "/v2/models/{name}/ready"
		if err := allow(ctx, "GET"); err != nil {
			return err
		}
		if m == nil {
			return modelNotFound(name)
		}
		return writeJSON(ctx, 200, map[string]any{"name": name, "ready": true})
	case "infer":
		c.route = "/v2/models/{name}/infer"
		if err := allow(ctx, "POST"); err != nil {
			return err
		}
		if m == nil {
			return modelNotFound(name)
		}
		return s.infer(ctx, st, m)
	}
	c.route = "other"
	return newError(fasthttp.StatusNotFound, "not_found_error", "not_found", "no route for "+strconv.Quote(string(ctx.Path())))
}

func (s *Server) infer(ctx *fasthttp.RequestCtx, st *State, m *engine.TensorModel) error {
	headerLen := -1
	if h := ctx.Request.Header.Peek(InferenceHeaderLength); len(h) > 0 {
		n, err := strconv.Atoi(string(h))
		if err != nil || n < 0 {
			return badRequest(InferenceHeaderLength + " must be a non-negative integer")
		}
		headerLen = n
	}
	req, err := decodeInferRequest(ctx.Request.Body(), headerLen)
	if err != nil {
		return badRequest(err.Error())
	}
	rctx, cancel := context.WithTimeout(context.Background(), st.RequestTimeout)
	defer cancel()
	outs, err := m.Infer(rctx, req.Inputs, req.Outputs)
	if err != nil {
		return err
	}
	body, hl := encodeInferResponse(m.Name(), req.ID, outs, req)
	if hl >= 0 {
		ctx.Response.Header.Set(InferenceHeaderLength, strconv.Itoa(hl))
		ctx.SetContentType("application/octet-stream")
	} else {
		ctx.SetContentType("application/json")
	}
	ctx.SetBody(body)
	return nil
}

func allow(ctx *fasthttp.RequestCtx, method string) error {
	m := string(ctx.Method())
	if m == method || (method == "GET" && m == "HEAD") {
		return nil
	}
	ctx.Response.Header.Set("Allow", method)
	e := newError(fasthttp.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use "+method+" for "+string(ctx.Path()))
	return e
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	return nil
}
