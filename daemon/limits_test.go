package daemon_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aiassist/aiassist/daemon/gate"
)

// TestRateLimitsOverHTTP: a burst against a global bucket lets through its
// burst plus its rate per elapsed second, and refuses the rest with 429,
// Retry-After and OpenAI's x-ratelimit headers; two limit classes are
// independent; a reload that changes a class's limit applies it; a class
// over its tokens per minute is stopped.
func TestRateLimitsOverHTTP(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	llama, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	port := freePort(t)
	gold, silver, tokens := gate.NewKey(), gate.NewKey(), gate.NewKey()
	render := func(silverRate float64) string {
		return fmt.Sprintf(`listeners: [{port: %d}]
models: {demo: {kind: "tensor", path: "demo.onnx"}, llama: {kind: "causal-lm", path: %q}}
auth: api_keys: {
	gold: {hash: %q, limit: "gold"}
	silver: {hash: %q, limit: "silver"}
	tokens: {hash: %q, limit: "tokens"}
}
metrics: require_auth: false
limits: {
	global: {requests_per_second: 2, burst: 10}
	classes: {
		gold: {requests_per_second: 1000, burst: 1000}
		silver: {requests_per_second: %v, burst: 3}
		tokens: {tokens_per_minute: 30}
	}
}
`, port, llama, gate.HashKey(gold), gate.HashKey(silver), gate.HashKey(tokens), silverRate)
	}
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, render(0.01))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })
	call := func(key, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	infer := func(key string) *http.Response { return call(key, "/v2/models/demo/infer", demoInput) }

	// The global bucket: burst 10, 2 per second.
	const n = 40
	start := time.Now()
	ok, refused := 0, 0
	for range n {
		resp := infer(gold)
		switch resp.StatusCode {
		case 200:
			ok++
		case 429:
			refused++
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 || resp.Header.Get("x-ratelimit-limit-requests") == "" || resp.Header.Get("x-ratelimit-reset-requests") == "" {
				t.Errorf("a 429 without Retry-After and x-ratelimit headers: %v", resp.Header)
			}
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	elapsed := time.Since(start).Seconds()
	want := 10 + 2*elapsed
	if math.Abs(float64(ok)-want) > 1.5 {
		t.Errorf("%d of %d admitted in %.2fs; want burst 10 + 2/s = %.1f (± 1)", ok, n, elapsed, want)
	}
	if ok+refused != n {
		t.Errorf("%d admitted + %d refused of %d", ok, refused, n)
	}
	if m := p.metrics(port); m[`aiassist_limit_refused_total{reason="global"}`] != float64(refused) {
		t.Errorf("limit_refused_total{global} = %v, want %d", m[`aiassist_limit_refused_total{reason="global"}`], refused)
	}

	// Wait for the global bucket to refill enough for the rest.
	time.Sleep(3 * time.Second)
	// silver has its own bucket of 3; gold's use does not touch it.
	got := 0
	for range 5 {
		if infer(silver).StatusCode == 200 {
			got++
		}
	}
	if got != 3 {
		t.Errorf("silver admitted %d of 5, want its burst of 3", got)
	}
	// A reload that raises silver's rate applies it at once: its empty
	// bucket refills at the new rate (a changed bucket keeps the tokens it
	// had, so a reload grants no free burst).
	writeConfig(t, cfg, render(50))
	p.signal(syscall.SIGHUP)
	p.until("generation 2", func() bool { return p.metrics(port)["aiassist_config_generation"] == 2 })
	time.Sleep(1500 * time.Millisecond)
	if resp := infer(silver); resp.StatusCode != 200 {
		t.Errorf("silver after its rate was raised: %d", resp.StatusCode)
	}

	// tokens: 30 a minute, charged after each generation.
	time.Sleep(2 * time.Second)
	gen := `{"model":"llama","prompt":"Hi","max_tokens":20,"temperature":0}`
	first := call(tokens, "/v1/completions", gen)
	if first.StatusCode != 200 {
		t.Fatalf("first generation: %d", first.StatusCode)
	}
	var last *http.Response
	for range 3 {
		if last = call(tokens, "/v1/completions", gen); last.StatusCode != 200 {
			break
		}
	}
	if last.StatusCode != 429 || last.Header.Get("x-ratelimit-limit-tokens") == "" {
		t.Errorf("a class past its tokens per minute: %d %v", last.StatusCode, last.Header)
	}
	if m := p.metrics(port); m[`aiassist_limit_refused_total{reason="tokens"}`] < 1 {
		t.Error("no refusal counted for tokens")
	}
}
