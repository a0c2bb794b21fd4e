package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakRSS reads a process's peak resident set size (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestOverload drives about ten times what the server can take, for a
// few seconds, on loopback: 64 clients against a causal-lm model that
// generates 2 sequences at a time with 4 waiting, and a tensor model with
// a short queue, under a global rate limit. Every request must get 2xx,
// 429, 503 or 504 — no reset, no hang — accepted ones within their
// deadline, and the daemon's memory must stay bounded.
func TestOverload(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	llama, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{port: %d}]
logging: access_log: false
server: request_timeout: "10s"
limits: global: {requests_per_second: 400, burst: 100}
models: {
	demo: {kind: "tensor", path: "demo.onnx", batching: max_queue_size: 8}
	llama: {kind: "causal-lm", path: %q, max_sequences: 2, max_queue: 4}
}
`, port, llama))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	const clients, duration = 64, 6 * time.Second
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	type result struct {
		status int
		took   time.Duration
		err    error
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			path, body := "/v2/models/demo/infer", demoInput
			if i%4 != 0 {
				path, body = "/v1/completions", `{"model":"llama","prompt":"Hello there","max_tokens":48,"temperature":0}`
			}
			for ctx.Err() == nil {
				req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				r := result{took: time.Since(t0), err: err}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					r.status = resp.StatusCode
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	counts := map[int]int{}
	var refusals, accepted []time.Duration
	for _, r := range results {
		if r.err != nil {
			t.Errorf("a request failed without an answer: %v", r.err)
			continue
		}
		counts[r.status]++
		switch r.status {
		case 200:
			accepted = append(accepted, r.took)
		case 429, 503, 504:
			refusals = append(refusals, r.took)
		default:
			t.Errorf("status %d under overload", r.status)
		}
	}
	slices.Sort(refusals)
	slices.Sort(accepted)
	p99 := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[len(d)*99/100]
	}
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("%d requests in %s from %d clients: %v; accepted p99 %s, refusals p99 %s; peak RSS %d MiB",
		len(results), duration, clients, counts, p99(accepted), p99(refusals), peak>>20)
	if counts[200] == 0 || len(refusals) == 0 {
		t.Errorf("the load did not overload: %v", counts)
	}
	if p99(accepted) > 10*time.Second+time.Second {
		t.Errorf("an accepted request took %s, past its 10s deadline", p99(accepted))
	}
	if peak > 1<<30 {
		t.Errorf("peak RSS %d MiB", peak>>20)
	}
	if code, _, err := p.get(base + "/v2/health/ready"); err != nil || code != 200 {
		t.Errorf("after the overload: %d %v", code, err)
	}
	m := p.metrics(port)
	for _, model := range []string{"demo", "llama"} {
		if m[`aiassist_model_queue_wait_seconds_count{model="`+model+`"}`] < 1 {
			t.Errorf("no queue wait observed for %s", model)
		}
	}
}
