package api

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
	"github.com/aiassist/aiassist/engine"
)

// BenchmarkGatewayHTTP measures what the gateway adds to a request over
// HTTP on loopback: the demo MLP (one row, batching off, so the model's
// own time is small) served open, with an API key, with a JWT (HS256),
// and with a key under a global limit and a limit class (limits far
// above the load, so every request is admitted and the cost is the
// check's). 16 clients; reports requests/s and the p50/p99 latency.
//
//	go test -run '^$' -bench GatewayHTTP -benchtime 20000x ./daemon/api/
func BenchmarkGatewayHTTP(b *testing.B) {
	key := gate.NewKey()
	secret := []byte("bench-only-hs256-secret-of-32-bytes-or-more")
	tok, err := gate.MintHS256(secret, "bench", gate.ScopeModelCall, time.Hour, nil, "", "")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newGate := func(withKeys bool) *gate.Gate {
		opts := gate.Options{}
		if withKeys {
			opts.Keys = []gate.Key{{Name: "bench", Hash: gate.HashKey(key), Limit: "gold"}}
			opts.JWT = &gate.JWTOptions{HS256Secret: secret}
		}
		g, err := gate.New(opts, quiet, metrics.NewSet())
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	limits, err := limit.New(limit.Options{
		Global:  limit.Rate{PerSecond: 1e6, Burst: 1e6},
		Classes: map[string]limit.Class{"gold": {Requests: limit.Rate{PerSecond: 1e6, Burst: 1e6}, MaxConcurrent: 1000}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := loadModel(b, engine.TensorModelOptions{Name: "demo", Path: demoPath(b), Instances: 2, Batching: engine.BatchOptions{Enabled: false, MaxBatchSize: 1, MaxQueueSize: 1024}})
	body := []byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	for _, c := range []struct {
		name   string
		gate   *gate.Gate
		limits *limit.Limiter
		header [2]string
	}{
		{"open", newGate(false), nil, [2]string{}},
		{"key", newGate(true), nil, [2]string{"X-API-Key", key}},
		{"jwt-hs256", newGate(true), nil, [2]string{"Authorization", "Bearer " + tok}},
		{"key+limits", newGate(true), limits, [2]string{"X-API-Key", key}},
	} {
		b.Run(c.name, func(b *testing.B) {
			st := &State{Models: map[string]*engine.TensorModel{"demo": m}, RequestTimeout: time.Minute, Gate: c.gate, Limits: c.limits}
			ts := serve(b, st, serverOptions{logger: quiet})
			const clients = 16
			var mu sync.Mutex
			var lat []time.Duration
			work := make(chan struct{})
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Go(func() {
					var mine []time.Duration
					for range work {
						req, _ := http.NewRequest("POST", ts.url+"/v2/models/demo/infer", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						if c.header[0] != "" {
							req.Header.Set(c.header[0], c.header[1])
						}
						t0 := time.Now()
						resp, err := ts.client.Do(req)
						if err != nil {
							b.Error(err)
							continue
						}
						out, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						mine = append(mine, time.Since(t0))
						if resp.StatusCode != 200 || !strings.Contains(string(out), `"outputs"`) {
							b.Errorf("status %d: %s", resp.StatusCode, out)
						}
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
			}
			for b.Loop() {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) == 0 {
				return
			}
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
