package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aiassist/aiassist/schema"
)

func TestDefaultModel(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		cfg, err := schema.Parse("c.cue", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := defaultModel(cfg); got != want {
			t.Errorf("%s: default %q, want %q", src, got, want)
		}
	}
	f(`models: a: {kind: "tensor", path: "a.onnx"}`, "")
	f(`models: {a: {kind: "tensor", path: "a.onnx"}, b: {kind: "causal-lm", path: "b"}}`, "b")
	f(`models: {b: {kind: "causal-lm", path: "b"}, c: {kind: "causal-lm", path: "c"}}`, "")
	f(`models: {b: {kind: "causal-lm", path: "b"}, c: {kind: "causal-lm", path: "c"}}
default_model: "c"`, "c")
}

// TestStatModel checks that replacing any file of a causal-lm folder
// changes its identity, so that a reload loads it again.
func TestStatModel(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"config.json", "model.onnx", "tokenizer.json", "tokenizer_config.json", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := schema.Model{Kind: schema.KindCausalLM, Path: dir}
	before, err := statModel(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := modelFiles(m); len(got) != 4 {
		t.Errorf("modelFiles = %q, want the four model files", got)
	}
	// A file that is not the model's changes nothing.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("more notes"), 0o644)
	if id, _ := statModel(m); id != before {
		t.Errorf("a change to notes.txt changed the model's identity")
	}
	tmp := filepath.Join(dir, "tokenizer.json.new")
	os.WriteFile(tmp, []byte("tokenizer.json"), 0o644)
	if err := os.Rename(tmp, filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	if id, _ := statModel(m); id == before {
		t.Errorf("replacing tokenizer.json left the model's identity unchanged")
	}
	if _, err := statModel(schema.Model{Kind: schema.KindCausalLM, Path: filepath.Join(dir, "nope")}); err == nil {
		t.Errorf("no error for a missing folder")
	}
}

// TestGenerateOptionsMaxQueue checks that the config's max_queue: 0 (no
// request waits) does not reach the engine as its zero, which means the
// default queue of 64.
func TestGenerateOptionsMaxQueue(t *testing.T) {
	f := func(src string, want int) {
		t.Helper()
		cfg, err := schema.Parse("c.cue", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := generateOptions(cfg, cfg.Models["b"], nil).MaxQueue; got != want {
			t.Errorf("%s: engine MaxQueue %d, want %d", src, got, want)
		}
	}
	f(`models: b: {kind: "causal-lm", path: "b", max_queue: 0}`, -1)
	f(`models: b: {kind: "causal-lm", path: "b", max_queue: 3}`, 3)
	f(`models: b: {kind: "causal-lm", path: "b"}`, 64)
}
