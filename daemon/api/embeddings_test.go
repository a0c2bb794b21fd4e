package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
	"github.com/aiassist/aiassist/engine/generate"
)

func loadTinyBert(t testing.TB, opts embed.Options) *embed.Model {
	t.Helper()
	opts.Name = "bert"
	opts.Dir = filepath.Join("..", "..", "examples", "models", "tiny-bert")
	opts.Normalize = true
	m, err := embed.Load(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

type embeddingsJSON struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
		Chunks    int             `json:"chunks"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// vectors decodes the embeddings, floats or base64 of little-endian
// float32 as the SDKs decode them.
func (e embeddingsJSON) vectors(t testing.TB) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, d := range e.Data {
		var v []float32
		var s string
		if json.Unmarshal(d.Embedding, &s) == nil {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b)%4 != 0 {
				t.Fatalf("embedding %q is not base64 of float32s: %v", s, err)
			}
			for i := 0; i < len(b); i += 4 {
				v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
			}
		} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
			t.Fatalf("embedding %s: %v", d.Embedding, err)
		}
		out = append(out, v)
	}
	return out
}

// sdkEmbeddings sends exactly what the official openai SDK (Node, 4.104.0)
// sends for embeddings.create: its headers, and its body, indented by two
// spaces as the SDK writes it.
func sdkEmbeddings(t testing.TB, ts *v1Server, body map[string]any) reply {
	t.Helper()
	b, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return ts.do(t, "POST", "/v1/embeddings", b, map[string]string{
		"Accept": "application/json", "Content-Type": "application/json", "User-Agent": "OpenAI/JS 4.104.0",
		"X-Stainless-Lang": "js", "X-Stainless-Package-Version": "4.104.0", "X-Stainless-OS": "Linux",
		"X-Stainless-Arch": "x64", "X-Stainless-Runtime": "node", "X-Stainless-Runtime-Version": "v20.20.2",
		"Authorization": "Bearer sk-test", "X-Stainless-Retry-Count": "0", "X-Stainless-Timeout": "600",
	})
}

func close32(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("%s: value %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestEmbeddingsSDK drives /v1/embeddings with the official SDK's wire
// calls: base64, which the SDK asks for when the caller names no
// encoding_format, and float; both decode to the engine's embeddings.
func TestEmbeddingsSDK(t *testing.T) {
	set := metrics.NewSet()
	m := loadTinyBert(t, embed.Options{Chunking: embed.Chunking{Window: 16, Stride: 4}, Batching: engine.BatchOptions{Enabled: true, MaxBatchSize: 32}})
	ts := serveV1(t, &State{Embedders: map[string]*embed.Model{"bert": m}}, set)
	long := "the old man said that every word would find its place near the water and the light of the house"
	want, err := m.Embed(context.Background(), embed.Request{Inputs: []embed.Input{{Text: "hello world"}, {Text: long}}})
	if err != nil {
		t.Fatal(err)
	}

	// embeddings.create({model, input}) with no encoding_format.
	r := sdkEmbeddings(t, ts, map[string]any{"model": "bert", "input": "hello world", "encoding_format": "base64"})
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("base64: %d %s", r.status, r.body)
	}
	got := unmarshal[embeddingsJSON](t, string(r.body))
	if got.Object != "list" || got.Model != "bert" || len(got.Data) != 1 || got.Data[0].Object != "embedding" || got.Data[0].Index != 0 ||
		got.Data[0].Chunks != 1 || got.Usage.PromptTokens != want.Tokens-(len(m.Encode(long))+2) || got.Usage.TotalTokens != got.Usage.PromptTokens {
		t.Fatalf("base64 answer %s", r.body)
	}
	close32(t, "base64", got.vectors(t)[0], want.Embeddings[0])
	line := ts.logs.accessLine(t, r.header.Get("X-Request-Id"))
	if line["prompt_tokens"] != float64(got.Usage.PromptTokens) || line["model"] != "bert" || line["route"] != "/v1/embeddings" {
		t.Errorf("access log %v", line)
	}

	// embeddings.create({model, input: [...], encoding_format: "float"}).
	r = sdkEmbeddings(t, ts, map[string]any{"model": "bert", "input": []string{"hello world", long}, "encoding_format": "float"})
	if r.status != 200 {
		t.Fatalf("float: %d %s", r.status, r.body)
	}
	got = unmarshal[embeddingsJSON](t, string(r.body))
	if len(got.Data) != 2 || got.Data[1].Index != 1 || got.Data[1].Chunks != want.Chunks[1] || want.Chunks[1] < 2 || got.Usage.PromptTokens != want.Tokens {
		t.Fatalf("float answer %s", r.body)
	}
	if !strings.HasPrefix(string(got.Data[0].Embedding), "[") {
		t.Fatalf("float embedding %s", got.Data[0].Embedding)
	}
	for i, v := range got.vectors(t) {
		close32(t, "float", v, want.Embeddings[i])
	}
	// The tokens are counted as a generation's prompt is.
	var b strings.Builder
	set.WritePrometheus(&b)
	counted := false
	for l := range strings.Lines(b.String()) {
		counted = counted || strings.HasPrefix(l, "aiassist_request_tokens_total{") && strings.Contains(l, `model="bert"`) && strings.Contains(l, `direction="in"`) && !strings.HasSuffix(l, " 0\n")
	}
	if !counted {
		t.Errorf("no input tokens counted:\n%s", b.String())
	}
}

// TestEmbeddingsInputs: token arrays give what their text gives, without
// the model named when it is the only embedding model; float is the
// default without the SDK.
func TestEmbeddingsInputs(t *testing.T) {
	m := loadTinyBert(t, embed.Options{})
	ts := serveV1(t, &State{Embedders: map[string]*embed.Model{"bert": m}}, nil)
	ids := m.Encode("water and light")
	idsJSON, _ := json.Marshal(ids)
	r := ts.post(t, "/v1/embeddings", `{"input":"water and light"}`)
	text := unmarshal[embeddingsJSON](t, string(r.body))
	if r.status != 200 || !strings.HasPrefix(string(text.Data[0].Embedding), "[") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, body := range []string{`{"input":` + string(idsJSON) + `}`, `{"input":[` + string(idsJSON) + `,` + string(idsJSON) + `],"user":"u"}`} {
		r := ts.post(t, "/v1/embeddings", body)
		got := unmarshal[embeddingsJSON](t, string(r.body))
		if r.status != 200 || got.Usage.PromptTokens != len(got.Data)*(len(ids)+2) {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
		for _, v := range got.vectors(t) {
			close32(t, "ids", v, text.vectors(t)[0])
		}
	}
}

// TestEmbeddingsErrors: every refusal is a 400 or 404 that names the
// field at fault.
func TestEmbeddingsErrors(t *testing.T) {
	bert := loadTinyBert(t, embed.Options{Chunking: embed.Chunking{Off: true}, MaxLength: 16})
	other := loadTinyBert(t, embed.Options{})
	st := &State{Embedders: map[string]*embed.Model{"bert": bert, "other": other}, Generators: map[string]*generate.Model{}, Models: map[string]*engine.TensorModel{}}
	ts := serveV1(t, st, nil)
	long := strings.Repeat("the water ", 20)
	f := func(body string, status int, code, param, msg string) {
		t.Helper()
		r := ts.post(t, "/v1/embeddings", body)
		var e struct {
			Error map[string]string `json:"error"`
		}
		if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Error["code"] != code || e.Error["param"] != param || !strings.Contains(e.Error["message"], msg) {
			t.Errorf("%s: %d %s, want %d %s %s %q", body, r.status, r.body, status, code, param, msg)
		}
	}
	f(`{"model":"bert","input":"`+long+`"}`, 400, "input_too_long", "input", "input 0 has 42 tokens, more than the 16")
	f(`{"model":"bert","input":"a","dimensions":8}`, 400, "invalid_input", "dimensions", "does not take another size")
	f(`{"model":"bert","input":"a","dimensions":0}`, 400, "invalid_input", "dimensions", "at least 1")
	f(`{"model":"bert","input":"a","encoding_format":"int8"}`, 400, "invalid_input", "encoding_format", `"float" or "base64"`)
	f(`{"model":"bert"}`, 400, "invalid_input", "input", "input is required")
	f(`{"model":"bert","input":""}`, 400, "invalid_input", "input", "empty string")
	f(`{"model":"bert","input":[]}`, 400, "invalid_input", "input", "empty array")
	f(`{"model":"bert","input":["a",1]}`, 400, "invalid_input", "input", "input[1] is not a string")
	f(`{"model":"bert","input":[1,-2]}`, 400, "invalid_input", "input", "input[1] is -2")
	f(`{"model":"bert","input":[[1],[]]}`, 400, "invalid_input", "input", "input[1] is an empty array")
	f(`{"model":"bert","input":[99999]}`, 400, "invalid_input", "", "outside the vocabulary")
	f(`{"model":"bert","input":{"a":1}}`, 400, "invalid_input", "input", "input must be a string")
	f(`{"input":"a"}`, 400, "invalid_input", "model", "2 embedding models are served")
	f(`{"model":"gpt","input":"a"}`, 404, "model_not_found", "model", `model "gpt" is not served`)
	f(`{"model":"bert","input":"a","extra":1}`, 400, "unsupported_field", "extra", "unknown field")
}

// TestEmbeddingModelsListed: /v1/models lists embedding models by kind.
func TestEmbeddingModelsListed(t *testing.T) {
	m := loadTinyBert(t, embed.Options{})
	ts := serveV1(t, &State{Embedders: map[string]*embed.Model{"bert": m}}, nil)
	r := ts.get(t, "/v1/models")
	if r.status != 200 || !strings.Contains(string(r.body), `{"id":"bert","object":"model","created":`) || !strings.Contains(string(r.body), `"kind":"embedding","max_model_len":64}`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = ts.get(t, "/v1/models/bert")
	if r.status != 200 || !strings.Contains(string(r.body), `"kind":"embedding"`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = ts.get(t, "/v2/models/bert")
	if r.status != 404 || !strings.Contains(string(r.body), "POST /v1/embeddings") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = ts.post(t, "/v1/completions", `{"model":"bert","prompt":"a"}`)
	if r.status != 400 || !strings.Contains(string(r.body), "POST /v1/embeddings") {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
