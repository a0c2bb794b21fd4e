// Package route is what every API route shares, so that each protocol
// package holds only its own formats: the State a request is served from,
// the Request a route reads, the Route type the server dispatches on, one
// strict JSON decoder, one error type with one writer (a JSON body or a
// server-sent event), one mapping of engine errors to statuses, and the
// cap on request values echoed back in messages.
package route

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
)

// Request is one request on its way through the server.
type Request struct {
	Ctx   *fasthttp.RequestCtx
	State *State
	ID    string
	Start time.Time
	// Route is the matched route's Name, the metric label; "other" when
	// no route matched, "" until matching.
	Route string
	// Model is the model the request is for, set by the route's Resolve;
	// "" for routes that serve no model.
	Model string
	// Reason is the error code the access log and metrics get; "" for
	// success.
	Reason string
	// Extra are added to the access log line.
	Extra []slog.Attr
	// ClientIP is the client's address (X-Forwarded-For believed from
	// trusted proxies), once the server has worked it out.
	ClientIP netip.Addr
	// Principal is who the gate let through; nil without a gate.
	Principal *gate.Principal
	// Ticket is the request's admission by the rate limits; released
	// and charged with Tokens when the request ends.
	Ticket limit.Ticket
	// TokensIn and TokensOut are the prompt and generated tokens the
	// request used, set by generation routes: logged, and charged to its
	// limit class.
	TokensIn, TokensOut int
	// QueueWait is how long the request waited before its model took it.
	QueueWait time.Duration
	// params are the values of the matched pattern's {wildcards}.
	params []param
}

type param struct{ name, value string }

// Param is the value of the path wildcard {name}; "" when the matched
// pattern has none.
func (r *Request) Param(name string) string {
	for _, p := range r.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// Route is one endpoint of the API. The server finds it by path, checks
// the method, then calls Resolve, which names the model the request is for
// and reads the body without running anything. The gate's checks, which
// need the model, run between Resolve and the Handler it returns.
type Route struct {
	// Name is the metric label and the log's route field, e.g.
	// "/v2/models/{name}/infer".
	Name string
	// Method is the one method the route takes; GET routes answer HEAD
	// too.
	Method string
	// Paths are the patterns the route serves: literal segments, {x} for
	// one segment, {x...} for the rest of the path. Empty means Name.
	Paths []string
	// Resolve sets r.Model and returns what serves the request.
	Resolve func(r *Request) (Handler, error)
}

// Handler does a request's work once the gate has let it through. It
// answers on r.Ctx, or returns a Stream for the server to write after its
// fasthttp handler has returned.
type Handler interface {
	Serve(r *Request) (Stream, error)
}

// HandlerFunc is a Handler of one function, for routes with nothing to
// carry from Resolve.
type HandlerFunc func(r *Request) (Stream, error)

// Serve calls f.
func (f HandlerFunc) Serve(r *Request) (Stream, error) { return f(r) }

// Stream is a response body of server-sent events. The status and headers
// are set before it is returned.
type Stream interface {
	// Write sends the events. It runs on fasthttp's goroutine after the
	// handler has returned, so it must not touch the request's Ctx; it
	// may set the request's Reason and Extra, which are logged when it
	// returns.
	Write(w *SSE)
}

// Table finds routes by path.
type Table struct {
	entries []entry
}

type entry struct {
	segments []string
	route    *Route
}

// Add registers routes; the first pattern that matches a path wins.
func (t *Table) Add(routes ...*Route) {
	for _, rt := range routes {
		paths := rt.Paths
		if len(paths) == 0 {
			paths = []string{rt.Name}
		}
		for _, p := range paths {
			t.entries = append(t.entries, entry{strings.Split(p, "/"), rt})
		}
	}
}

// Match returns the route for path and sets r's path parameters, or nil.
func (t *Table) Match(r *Request, path string) *Route {
	segs := strings.Split(path, "/")
	for _, e := range t.entries {
		if params, ok := match(e.segments, segs); ok {
			r.params = params
			return e.route
		}
	}
	return nil
}

func match(pattern, segs []string) ([]param, bool) {
	var params []param
	for i, p := range pattern {
		if i >= len(segs) {
			return nil, false
		}
		name, ok := strings.CutPrefix(p, "{")
		if !ok {
			if segs[i] != p {
				return nil, false
			}
			continue
		}
		name = strings.TrimSuffix(name, "}")
		if rest, ok := strings.CutSuffix(name, "..."); ok {
			v := strings.Join(segs[i:], "/")
			if v == "" {
				return nil, false
			}
			return append(params, param{rest, v}), true
		}
		if segs[i] == "" {
			return nil, false
		}
		params = append(params, param{name, segs[i]})
	}
	return params, len(pattern) == len(segs)
}

// WriteJSON answers with v as JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	return nil
}
