// Package observe holds the daemon's request metrics and access log: one
// place that turns a finished request into counters, a latency histogram
// and one JSON log line, with the prompt and response capped, redacted or
// sealed when they are logged at all.
package observe

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// LatencyBuckets are the request-duration histogram bounds in seconds;
// classic buckets so plain Prometheus histogram_quantile works.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Requests counts and times requests. Labels are bounded: route is a
// template like "/v2/models/{name}/infer" and model is a configured name.
type Requests struct {
	set      *metrics.Set
	mu       sync.RWMutex
	counters map[key]*metrics.Counter
	errors   map[key]*metrics.Counter
	hists    map[key]*metrics.PrometheusHistogram
	totals   totals
}

// totals are the whole server's request counts, kept apart from the
// labelled series so the status page can read them without parsing its
// own exposition.
type totals struct {
	requests, serverErrors atomic.Uint64
	// buckets[i] counts requests that took at most LatencyBuckets[i];
	// one more for the rest.
	buckets []atomic.Uint64
}

// Totals are cumulative counts of the model requests (those with a
// model, as the error-rate alert counts them) the server finished.
type Totals struct {
	Requests uint64 `json:"requests"`
	// ServerErrors are the answers with a 5xx status, as the error-rate
	// alert counts them.
	ServerErrors uint64 `json:"server_errors"`
	// LatencyBuckets are cumulative: LatencyCounts[i] requests took at
	// most LatencyBuckets[i] seconds, and the last count is all requests.
	LatencyBuckets []float64 `json:"latency_buckets"`
	LatencyCounts  []uint64  `json:"latency_counts"`
}

func (t *totals) observe(status int, d time.Duration) {
	t.requests.Add(1)
	if status >= 500 {
		t.serverErrors.Add(1)
	}
	sec := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && sec > LatencyBuckets[i] {
		i++
	}
	t.buckets[i].Add(1)
}

// Totals returns the cumulative counts so far.
func (r *Requests) Totals() Totals {
	t := Totals{Requests: r.totals.requests.Load(), ServerErrors: r.totals.serverErrors.Load(), LatencyBuckets: LatencyBuckets}
	var sum uint64
	for i := range r.totals.buckets {
		sum += r.totals.buckets[i].Load()
		t.LatencyCounts = append(t.LatencyCounts, sum)
	}
	return t
}

type key struct{ route, model, extra string }

// NewRequests registers request metrics in set.
func NewRequests(set *metrics.Set) *Requests {
	return &Requests{set: set, counters: map[key]*metrics.Counter{}, errors: map[key]*metrics.Counter{}, hists: map[key]*metrics.PrometheusHistogram{},
		totals: totals{buckets: make([]atomic.Uint64, len(LatencyBuckets)+1)}}
}

func labels(route, model string) string {
	return `route=` + strconv.Quote(route) + `,model=` + strconv.Quote(model)
}

func getOrCreate[T any](r *Requests, m map[key]T, k key, create func() T) T {
	r.mu.RLock()
	v, ok := m[k]
	r.mu.RUnlock()
	if ok {
		return v
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := m[k]; ok {
		return v
	}
	v = create()
	m[k] = v
	return v
}

// Observe records one finished request. reason is empty on success and a
// short error code otherwise.
func (r *Requests) Observe(route, model string, status int, reason string, d time.Duration) {
	if model != "" {
		r.totals.observe(status, d)
	}
	code := strconv.Itoa(status)
	getOrCreate(r, r.counters, key{route, model, code}, func() *metrics.Counter {
		return r.set.GetOrCreateCounter(`aiassist_requests_total{` + labels(route, model) + `,code="` + code + `"}`)
	}).Inc()
	getOrCreate(r, r.hists, key{route, model, ""}, func() *metrics.PrometheusHistogram {
		return r.set.GetOrCreatePrometheusHistogramExt(`aiassist_request_duration_seconds{`+labels(route, model)+`}`, LatencyBuckets)
	}).Update(d.Seconds())
	if reason != "" {
		getOrCreate(r, r.errors, key{route, model, reason}, func() *metrics.Counter {
			return r.set.GetOrCreateCounter(`aiassist_errors_total{` + labels(route, model) + `,reason=` + strconv.Quote(reason) + `}`)
		}).Inc()
	}
}

// AccessLog writes one line per request.
type AccessLog struct {
	Logger *slog.Logger
}

// Entry is what an access log line says about a request. The line's keys
// are listed in examples/elk/index-template.json, which types them for
// Elasticsearch; a zero field that says nothing is left out of the line,
// as its comment says.
type Entry struct {
	RequestID string // request_id, also the X-Request-Id header
	Method    string // method
	Path      string // path, as the client sent it
	Route     string // route, the metric label: a template such as "/v2/models/{name}/infer"
	Model     string // model
	Status    int    // status
	// Reason is the error code (error), "" on success: left out then.
	Reason   string
	Duration time.Duration // duration_seconds
	Remote   string        // remote_addr: the peer's IP
	// ClientIP (client_ip) is the client as the gate sees it: the peer,
	// or the address a trusted proxy gives in X-Forwarded-For. Left out
	// when "".
	ClientIP string
	// Auth (auth) is how the request authenticated: "key", "jwt" or
	// "anonymous". Principal (principal) names who it acted for: the API
	// key's principal, or the JWT's subject. Key (key) and KeyID
	// (key_id) are the API key's name in the config and its id, the
	// part before the secret; Issuer (issuer) is the JWT's. None is ever
	// a secret; each is left out when "".
	Auth, Principal, Key, KeyID, Issuer string
	// QueueWait (queue_wait_seconds) is how long the request waited in
	// its model's queue before it ran; left out when 0.
	QueueWait time.Duration
	BytesIn   int // bytes_in
	BytesOut  int // bytes_out
	// TokensIn (tokens_in) and TokensOut (tokens_out) are the prompt
	// and generated tokens of a text generation request; both are left
	// out when both are 0.
	TokensIn, TokensOut int
	// Extra are added at the end of the line: a route's own fields, and
	// the prompt and response of Prompts.Attrs.
	Extra []slog.Attr
}

// Log writes e at info level, or warn for server-side failures.
func (a AccessLog) Log(e Entry) {
	if a.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	attrs := make([]slog.Attr, 0, 24+len(e.Extra))
	attrs = append(attrs,
		slog.String("request_id", e.RequestID),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.String("route", e.Route),
		slog.String("model", e.Model),
		slog.Int("status", e.Status),
		slog.Float64("duration_seconds", e.Duration.Seconds()),
	)
	if e.QueueWait > 0 {
		attrs = append(attrs, slog.Float64("queue_wait_seconds", e.QueueWait.Seconds()))
	}
	attrs = append(attrs, slog.String("remote_addr", e.Remote))
	str := func(key, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(key, v))
		}
	}
	str("client_ip", e.ClientIP)
	str("auth", e.Auth)
	str("principal", e.Principal)
	str("key", e.Key)
	str("key_id", e.KeyID)
	str("issuer", e.Issuer)
	attrs = append(attrs, slog.Int("bytes_in", e.BytesIn), slog.Int("bytes_out", e.BytesOut))
	if e.TokensIn != 0 || e.TokensOut != 0 {
		attrs = append(attrs, slog.Int("tokens_in", e.TokensIn), slog.Int("tokens_out", e.TokensOut))
	}
	str("error", e.Reason)
	attrs = append(attrs, e.Extra...)
	a.Logger.LogAttrs(context.Background(), level, "request", attrs...)
}
