package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/engine/hub"
	"github.com/aiassist/aiassist/engine/hub/hubtest"
	"github.com/aiassist/aiassist/engine/modelgen"
)

// TestPullServes pulls the generated tiny-llama from a local hub the way
// an operator would (HF_ENDPOINT, HF_TOKEN, -dir, -name): the snippet it
// prints, appended to a config, passes check; the folder loads and
// generates; the token appears in no output; a second pull fetches
// nothing.
func TestPullServes(t *testing.T) {
	llama := filepath.Join("..", "..", "examples", "models", "tiny-llama")
	files := map[string][]byte{"README.md": []byte("# tiny\n")}
	for _, name := range []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.onnx"} {
		b, err := os.ReadFile(filepath.Join(llama, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "model.onnx" {
			name = "onnx/model.onnx"
		}
		files[name] = b
	}
	q4 := modelgen.QuantizeNBits(modelgen.TinyLlama().Llama, modelgen.NBitsOptions{BlockSize: 16})
	b, err := modelgen.Marshal(q4.Model("tiny-llama-q4"))
	if err != nil {
		t.Fatal(err)
	}
	files["onnx/model_q4.onnx"] = b
	h := hubtest.New(map[string]map[string][]byte{"org/tiny-llama": files})
	defer h.Close()
	const token = "hf_pulltesttoken"
	h.SetToken(token)
	t.Setenv("HF_ENDPOINT", h.API.URL)
	t.Setenv("HF_TOKEN", token)

	dir := t.TempDir()
	code, out, errOut := runCmd("pull", "-dir", dir, "-name", "tiny", "hf://org/tiny-llama")
	if code != 0 {
		t.Fatalf("pull = %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, token) {
		t.Fatalf("the token is in the output:\n%s%s", out, errOut)
	}
	path := filepath.Join(dir, "tiny")
	for _, want := range []string{`models: "tiny": {`, `kind:           "causal-lm"`, `path:           "` + path + `"`, "context_length: 256 // the model's maximum"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull printed\n%s\nwant %q", out, want)
		}
	}
	if strings.Contains(errOut, "warning") {
		t.Errorf("a warning for a pull over loopback:\n%s", errOut)
	}
	if !strings.Contains(errOut, "onnx/model.onnx: done") {
		t.Errorf("no progress line for the decoder:\n%s", errOut)
	}
	cfg := filepath.Join(dir, "config.cue")
	if err := os.WriteFile(cfg, []byte("default_model: \"tiny\"\n"+out), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, o, e := runCmd("check", "-config", cfg); code != 0 {
		t.Fatalf("check of the pulled model = %d\n%s%s\nconfig:\n%s", code, o, e, out)
	}

	rt, err := engine.Init(engine.RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	generates := func(path string) {
		t.Helper()
		m, err := generate.Load(rt, generate.Options{Name: "tiny", Dir: path})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var n int
		res, err := m.GenerateIDs(context.Background(), []int{40, 71, 82, 82, 85}, generate.Request{MaxTokens: 8}, func(int) error { n++; return nil })
		if err != nil || n != 8 {
			t.Fatalf("generate from %s: %d tokens, %+v, %v", path, n, res, err)
		}
	}
	generates(path)

	// The int4 variant lands in its own folder by default, and serves.
	code, out, errOut = runCmd("pull", "-dir", dir, "-variant", "q4", "hf://org/tiny-llama")
	if code != 0 || !strings.Contains(out, `models: "tiny-llama-q4": {`) {
		t.Fatalf("pull -variant q4 = %d\n%s%s", code, out, errOut)
	}
	generates(filepath.Join(dir, "tiny-llama-q4"))

	h.Stats()
	if code, out, errOut := runCmd("pull", "-dir", dir, "-name", "tiny", "hf://org/tiny-llama"); code != 0 || !strings.Contains(errOut, "0 downloaded") {
		t.Fatalf("second pull = %d\n%s%s", code, out, errOut)
	}
	if st := h.Stats(); st.Listings != 1 || st.Resolves != 0 || st.CDN != 0 {
		t.Errorf("second pull: %+v; want the listing only", st)
	}

	t.Setenv("HF_TOKEN", "")
	code, _, errOut = runCmd("pull", "-dir", dir, "hf://org/tiny-llama")
	if code != 1 || !strings.Contains(errOut, "set HF_TOKEN") {
		t.Errorf("pull without the token = %d\n%s", code, errOut)
	}
}

func TestFitContext(t *testing.T) {
	dir := t.TempDir()
	// Qwen2.5-0.5B: 24 layers, 2 kv heads, head dim 64: 24 KiB per token in fp32.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"hidden_size":896,"max_position_embeddings":32768}`), 0o644)
	opt := &hub.Selection{Layout: "optimum", Variant: "fp32"}
	f := func(sel *hub.Selection, avail int64, want int, why string) {
		t.Helper()
		got := fitContext(dir, sel, 1<<30, avail)
		if got.length != want || !strings.Contains(got.why, why) {
			t.Errorf("avail %d, %s: %d (%s); want %d (%s)", avail, sel.Variant, got.length, got.why, want, why)
		}
	}
	// 16 GiB free, 1 GiB weights: 7.5 GiB of cache / (8 × 24 KiB) = 40960 > 32768.
	f(opt, 16<<30, 32768, "the model's maximum")
	// 4 GiB free: 1.5 GiB / (8 × 24 KiB) = 8192.
	f(opt, 4<<30, 8192, "fits the memory (the model allows 32768): 8 sequences × 8192 tokens × 24.0 KiB")
	// fp16 halves the cache.
	f(&hub.Selection{Layout: "optimum", Variant: "q4f16"}, 4<<30, 16384, "fits the memory")
	f(opt, 1<<30+40<<20, 256, "memory is short")
	f(opt, 0, 32768, "MemAvailable is unknown")
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"hidden_size":896,"n_positions":128}`), 0o644)
	f(opt, 1<<30+40<<20, 128, "memory is short")
	f(opt, 16<<30, 128, "the model's maximum")
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"vocab_size":5}`), 0o644)
	f(opt, 16<<30, 2048, "a guess")
	os.WriteFile(filepath.Join(dir, "genai_config.json"), []byte(`{"model":{"context_length":4096,"decoder":{"head_size":64,"num_key_value_heads":2,"num_hidden_layers":24}}}`), 0o644)
	f(&hub.Selection{Layout: "genai", Variant: "cpu-int4"}, 16<<30, 4096, "the model's maximum")
	if got := parseMemAvailable("MemTotal:       16318412 kB\nMemFree:  1 kB\nMemAvailable:   12345678 kB\n"); got != 12345678<<10 {
		t.Errorf("parseMemAvailable = %d", got)
	}
}

// TestProgress drives both progress displays as a pull does, a resumed
// file included.
func TestProgress(t *testing.T) {
	var b strings.Builder
	p := &lineProgress{w: &b}
	w := p.Start("onnx/model.onnx", 100<<20, 10<<20)
	for range 90 {
		w.Write(make([]byte, 1<<20))
	}
	p.Done("onnx/model.onnx", nil)
	if got := b.String(); !strings.HasPrefix(got, "onnx/model.onnx: resuming at 10.0 MiB of 100.0 MiB\n") ||
		!strings.Contains(got, "onnx/model.onnx: 20% (20.0 MiB of 100.0 MiB)\n") || !strings.HasSuffix(got, "onnx/model.onnx: done\n") || strings.Count(got, "\n") != 10 {
		t.Errorf("plain progress:\n%s", got)
	}
	b.Reset()
	bar := &barProgress{w: &b}
	w = bar.Start("tokenizer.json", 2000, 500)
	w.Write(make([]byte, 1500))
	bar.Done("tokenizer.json", nil)
	if got := b.String(); !strings.Contains(got, "tokenizer.json") || !strings.Contains(got, "100%") {
		t.Errorf("bar progress: %q", got)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "10.0.0.1": false, "mirror.example": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}
