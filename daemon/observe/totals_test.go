package observe

import (
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func TestTotals(t *testing.T) {
	r := NewRequests(metrics.NewSet())
	r.Observe("/v1/generate", "m", 200, "", 3*time.Millisecond)    // <= .005
	r.Observe("/v1/generate", "m", 503, "x", 2*time.Second)        // <= 2.5
	r.Observe("/v1/generate", "m", 429, "x", 500*time.Microsecond) // <= .001
	r.Observe("/status.json", "", 200, "", time.Millisecond)       // not a model request
	r.Observe("/v1/generate", "m", 200, "", 2*time.Minute)         // above the last bound
	got := r.Totals()
	if got.Requests != 4 || got.ServerErrors != 1 {
		t.Fatalf("requests %d, server errors %d; want 4, 1", got.Requests, got.ServerErrors)
	}
	at := func(le float64) uint64 { return got.LatencyCounts[slices.Index(LatencyBuckets, le)] }
	if at(.001) != 1 || at(.005) != 2 || at(1) != 2 || at(2.5) != 3 || at(60) != 3 || got.LatencyCounts[len(LatencyBuckets)] != 4 {
		t.Fatalf("latency counts %v over %v", got.LatencyCounts, got.LatencyBuckets)
	}
}
