package daemon_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
)

// statusDoc is the part of /status.json the test reads.
type statusDoc struct {
	Live, Ready bool
	Version     string
	ONNXRuntime string `json:"onnxruntime"`
	Generation  uint64
	LastReload  struct{ Source, Result, Error string } `json:"last_reload"`
	Models      []struct {
		Name, Kind, Quantization string
		Instances                int
		ActiveSequences          *int `json:"active_sequences"`
		MaxSequences             int  `json:"max_sequences"`
	}
	Listeners []struct {
		Address string
		TLS     bool
	}
	Traffic struct {
		Requests      uint64
		LatencyCounts []uint64 `json:"latency_counts"`
	}
}

// TestStatusJSON: /status.json says what the daemon serves and what the
// last reload did, a failed one with the file:line:col of the error.
func TestStatusJSON(t *testing.T) {
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	llama, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	src := fmt.Sprintf("listeners: [{address: \"127.0.0.1\", port: %d}]\nmodels: {demo: {kind: \"tensor\", path: \"demo.onnx\", instances: 2}, chat: {kind: \"causal-lm\", path: %q, max_sequences: 3}}\n", port, llama)
	writeConfig(t, cfg, src)
	p := start(t, cfg)
	url := fmt.Sprintf("http://127.0.0.1:%d/status.json", port)
	read := func() statusDoc {
		t.Helper()
		code, body, err := p.get(url)
		if err != nil || code != 200 {
			t.Fatalf("GET /status.json: %d %v %s", code, err, body)
		}
		var d statusDoc
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return d
	}
	var d statusDoc
	p.until("ready", func() bool {
		code, _, err := p.get(fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", port))
		return err == nil && code == 200
	})
	d = read()
	if !d.Live || !d.Ready || d.Generation != 1 || d.ONNXRuntime == "" || d.LastReload.Source != "start" || d.LastReload.Result != "success" {
		t.Fatalf("after start: %+v", d)
	}
	if len(d.Models) != 2 || d.Models[0].Name != "chat" || d.Models[0].Kind != "causal-lm" || d.Models[0].MaxSequences != 3 || d.Models[0].ActiveSequences == nil ||
		d.Models[1].Name != "demo" || d.Models[1].Instances != 2 || d.Models[1].ActiveSequences != nil || d.Models[1].Quantization != "none" {
		t.Fatalf("models: %+v", d.Models)
	}
	if len(d.Listeners) != 1 || d.Listeners[0].Address != fmt.Sprintf("127.0.0.1:%d", port) || d.Listeners[0].TLS {
		t.Fatalf("listeners: %+v", d.Listeners)
	}
	if err := infer(t.Context(), p.client, port, "demo"); err != nil {
		t.Fatal(err)
	}
	if d := read(); d.Traffic.Requests != 1 || d.Traffic.LatencyCounts[len(d.Traffic.LatencyCounts)-1] != 1 {
		t.Fatalf("traffic after one inference: %+v", d.Traffic)
	}

	writeConfig(t, cfg, src+"server: {\n")
	p.until("the failed reload in /status.json", func() bool { return read().LastReload.Result == "failure" })
	d = read()
	if !regexp.MustCompile(`config\.cue:\d+:\d+: `).MatchString(d.LastReload.Error) || d.LastReload.Source != "file change" || d.Generation != 1 {
		t.Fatalf("after a broken edit: %+v", d.LastReload)
	}
	writeConfig(t, cfg, src+"server: request_timeout: \"40s\"\n")
	// The generation is published just before the reload's result is
	// recorded: wait for both.
	p.until("the next generation", func() bool { d := read(); return d.Generation == 2 && d.LastReload.Result == "success" })
	if d := read(); d.LastReload.Error != "" {
		t.Fatalf("after a good edit: %+v", d.LastReload)
	}
}
