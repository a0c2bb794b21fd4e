package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeExampleGenerate serves examples/config.cue, as `make run` does,
// and asks /v1/generate what the README's curl asks.
func TestServeExampleGenerate(t *testing.T) {
	requireBinary(t)
	src, err := os.ReadFile("../examples/config.cue")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	if !strings.Contains(string(src), "port: 8080") {
		t.Fatal("examples/config.cue does not listen on port 8080 any more; update this test")
	}
	dir := t.TempDir()
	models, _ := filepath.Abs("../examples/models")
	if err := os.Symlink(models, filepath.Join(dir, "models")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, strings.Replace(string(src), "port: 8080", fmt.Sprintf("port: %d", port), 1))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	resp, err := p.client.Post(base+"/v1/generate", "application/json", strings.NewReader(`{"prompt":"Hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var g struct {
		Model        string `json:"model"`
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
		Usage        struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	if err := json.Unmarshal(body, &g); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /v1/generate: %d %s", resp.StatusCode, body)
	}
	if g.Usage.CompletionTokens != 200 || g.FinishReason != "length" {
		t.Errorf("POST /v1/generate: %s; want 200 tokens, the seed API's default", body)
	}
	m := p.metrics(port)
	// The warm-up generated one token too.
	if m[`aiassist_generated_tokens_total{model="tiny-llama"}`] != 201 || m[`aiassist_requests_total{route="/v1/generate",model="tiny-llama",code="200"}`] != 1 {
		t.Errorf("metrics after one generation: generated %v, requests %v", m[`aiassist_generated_tokens_total{model="tiny-llama"}`], m[`aiassist_requests_total{route="/v1/generate",model="tiny-llama",code="200"}`])
	}
}
