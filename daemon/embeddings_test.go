package daemon_test

import (
	"encoding/base64"
	bin "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/daemon/gate"
)

// TestEmbeddingsThroughGateway runs the real daemon with the committed
// tiny-bert and drives /v1/embeddings as the official openai SDK does
// (its headers; its body, indented; base64 when the caller names no
// encoding_format, else float): the gateway authenticates and applies the
// key's models, the answer decodes as the SDK decodes it, and the tokens
// are counted for the key and charged to its class's tokens_per_minute.
func TestEmbeddingsThroughGateway(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	bert, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-bert"))
	port := freePort(t)
	keys := map[string]string{"rag": gate.NewKey(), "other": gate.NewKey(), "small": gate.NewKey()}
	cfg := fmt.Sprintf(`listeners: [{port: %d}]
models: {demo: {kind: "tensor", path: "demo.onnx"}, bert: {kind: "embedding", path: %q, chunking: {window: 16, stride: 4}}}
auth: api_keys: {
	rag: {hash: %q, models: ["bert"]}
	other: {hash: %q, models: ["demo"]}
	small: {hash: %q, models: ["bert"], limit: "small"}
}
limits: classes: small: tokens_per_minute: 20
`, port, bert, gate.HashKey(keys["rag"]), gate.HashKey(keys["other"]), gate.HashKey(keys["small"]))
	path := filepath.Join(dir, "config.cue")
	writeConfig(t, path, cfg)
	p := start(t, path)
	p.until("readiness", func() bool {
		code, _, _ := p.get(fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", port))
		return code == 200
	})
	sdk := func(key string, body map[string]any) (int, []byte) {
		t.Helper()
		b, _ := json.MarshalIndent(body, "", "  ")
		req, err := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/embeddings", port), strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"Accept": "application/json", "Content-Type": "application/json", "User-Agent": "OpenAI/JS 4.104.0",
			"X-Stainless-Lang": "js", "X-Stainless-Package-Version": "4.104.0", "X-Stainless-Runtime": "node", "X-Stainless-Retry-Count": "0"} {
			req.Header.Set(k, v)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+keys[key])
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	type answer struct {
		Data []struct {
			Embedding json.RawMessage `json:"embedding"`
			Chunks    int             `json:"chunks"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	long := strings.Repeat("the water and the light of the house ", 6)

	if code, body := sdk("", map[string]any{"model": "bert", "input": "hello", "encoding_format": "base64"}); code != 401 {
		t.Errorf("no key: %d %s", code, body)
	}
	if code, body := sdk("other", map[string]any{"model": "bert", "input": "hello", "encoding_format": "base64"}); code != 403 {
		t.Errorf("a key without bert: %d %s", code, body)
	}
	code, body := sdk("rag", map[string]any{"model": "bert", "input": []string{"hello world", long}, "encoding_format": "base64"})
	var b64 answer
	if code != 200 || json.Unmarshal(body, &b64) != nil || len(b64.Data) != 2 || b64.Data[1].Chunks < 2 {
		t.Fatalf("base64: %d %s", code, body)
	}
	code, body = sdk("rag", map[string]any{"model": "bert", "input": []string{"hello world", long}, "encoding_format": "float"})
	var floats answer
	if code != 200 || json.Unmarshal(body, &floats) != nil || len(floats.Data) != 2 || floats.Usage.PromptTokens != b64.Usage.PromptTokens {
		t.Fatalf("float: %d %s", code, body)
	}
	for i := range floats.Data {
		var s string
		var want []float32
		if json.Unmarshal(b64.Data[i].Embedding, &s) != nil || json.Unmarshal(floats.Data[i].Embedding, &want) != nil {
			t.Fatalf("embeddings %s, %s", b64.Data[i].Embedding, floats.Data[i].Embedding)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != 4*len(want) || len(want) != 32 {
			t.Fatalf("base64 %q: %v", s, err)
		}
		for d := range want {
			if got := math.Float32frombits(bin.LittleEndian.Uint32(raw[4*d:])); got != want[d] {
				t.Fatalf("embedding %d value %d: base64 %v, float %v", i, d, got, want[d])
			}
		}
	}
	m := p.metrics(port)
	if got := m[`aiassist_request_tokens_total{model="bert",key="rag",issuer="",direction="in"}`]; got != float64(2*b64.Usage.PromptTokens) {
		t.Errorf("tokens counted for rag: %v, want %d", got, 2*b64.Usage.PromptTokens)
	}
	if m[`aiassist_embedding_windows_total{model="bert"}`] < 2*float64(b64.Data[1].Chunks+1) {
		t.Errorf("windows not counted: %v", m[`aiassist_embedding_windows_total{model="bert"}`])
	}
	// The first request of the small class overshoots its 20 tokens a
	// minute (tokens are charged when known); the next is refused.
	if code, body := sdk("small", map[string]any{"model": "bert", "input": long}); code != 200 {
		t.Fatalf("small class, first: %d %s", code, body)
	}
	if code, body := sdk("small", map[string]any{"model": "bert", "input": "hello"}); code != 429 || !strings.Contains(string(body), "tokens") {
		t.Errorf("small class, second: %d %s", code, body)
	}
}
