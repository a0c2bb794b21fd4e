// Package observe holds the daemon's request metrics and access log: one
// place that turns a finished request into counters, a latency histogram
// and one JSON log line.
package observe

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
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
}

type key struct{ route, model, extra string }

// NewRequests registers request metrics in set.
func NewRequests(set *metrics.Set) *Requests {
	return &Requests{set: set, counters: map[key]*metrics.Counter{}, errors: map[key]*metrics.Counter{}, hists: map[key]*metrics.PrometheusHistogram{}}
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

// Entry is what an access log line says about a request.
type Entry struct {
	RequestID string
	Method    string
	Path      string
	Route     string
	Model     string
	Status    int
	Reason    string
	Duration  time.Duration
	Remote    string
	BytesIn   int
	BytesOut  int
	Extra     []slog.Attr
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
	attrs := []slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("method", e.Method),
		slog.String("path", e.Path),
		slog.String("route", e.Route),
		slog.String("model", e.Model),
		slog.Int("status", e.Status),
		slog.Float64("duration_seconds", e.Duration.Seconds()),
		slog.String("remote_addr", e.Remote),
		slog.Int("bytes_in", e.BytesIn),
		slog.Int("bytes_out", e.BytesOut),
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("error", e.Reason))
	}
	attrs = append(attrs, e.Extra...)
	a.Logger.LogAttrs(context.Background(), level, "request", attrs...)
}
