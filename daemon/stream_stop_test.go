package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStopFinishesStream sends SIGTERM while a /v1/generate stream is
// running: the stream must run to its end ([DONE] after every token) and
// the process exit 0. The log proves the stream was still running at the
// signal: its access line, written when a stream ends, comes after
// "stopping".
func TestStopFinishesStream(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	model, _ := filepath.Abs("../examples/models/tiny-llama")
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	// A context far beyond the model's 256 positions (RoPE is computed in
	// the graph, so any position works) makes a stream long enough to be
	// in flight when the signal lands.
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{port: %d}]
server: {shutdown_grace: "2m", request_timeout: "2m"}
models: "tiny-llama": {kind: "causal-lm", path: %q, context_length: 4096}
`, port, model))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	const tokens = 3000
	resp, err := p.client.Post(base+"/v1/generate", "application/json",
		strings.NewReader(fmt.Sprintf(`{"prompt":"Hello","max_tokens":%d,"temperature":0,"stream":true}`, tokens)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	events, signalled, done := 0, false, false
	var last string
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		events++
		last = line
		if !signalled {
			p.signal(syscall.SIGTERM)
			signalled = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("stream broke after %d events: %v", events, err)
	}
	if !done {
		t.Fatalf("stream ended after %d events without [DONE]", events)
	}
	var final struct {
		FinishReason string `json:"finish_reason"`
		Usage        struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(last), &final); err != nil || final.FinishReason != "length" || final.Usage.CompletionTokens != tokens {
		t.Fatalf("last event %s: want finish_reason length after %d tokens", last, tokens)
	}
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	log := p.log.String()
	stopping := strings.Index(log, `"msg":"stopping"`)
	stream := strings.Index(log, `"route":"/v1/generate"`)
	if stopping < 0 || stream < 0 || stream < stopping {
		t.Fatalf("the stream's access line must follow \"stopping\" (stopping at %d, stream at %d):\n%s", stopping, stream, log)
	}
	if !strings.Contains(log, `"msg":"stopped"`) {
		t.Fatal("no clean stop in the log")
	}
}
