package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyDir copies the files of a folder (not its subfolders).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckOpensModelFiles: check opens what a reload would open, without
// ONNX Runtime, and reports each problem at the file:line:col of the
// model's path (the systemd unit's ExecReload relies on check).
func TestCheckOpensModelFiles(t *testing.T) {
	dir := t.TempDir()
	llama := filepath.Join("..", "..", "examples", "models", "tiny-llama")
	copyDir(t, llama, filepath.Join(dir, "good"))
	copyDir(t, llama, filepath.Join(dir, "no-tokenizer"))
	os.Remove(filepath.Join(dir, "no-tokenizer", "tokenizer.json"))
	copyDir(t, llama, filepath.Join(dir, "no-onnx"))
	os.Remove(filepath.Join(dir, "no-onnx", "model.onnx"))
	os.WriteFile(filepath.Join(dir, "empty.onnx"), nil, 0o644)
	demo, _ := os.ReadFile(filepath.Join("..", "..", "examples", "models", "demo-mlp", "model.onnx"))
	os.WriteFile(filepath.Join(dir, "demo.onnx"), demo, 0o644)

	cfg := filepath.Join(dir, "config.cue")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`models: {
	good: {kind: "causal-lm", path: "good"}
	demo: {kind: "tensor", path: "demo.onnx"}
}
default_model: "good"
`)
	if code, out, errOut := runCmd("check", "-config", cfg); code != 0 {
		t.Fatalf("good models: check = %d\n%s%s", code, out, errOut)
	}
	write(`models: {
	good: {kind: "causal-lm", path: "good"}
	a: {kind: "causal-lm", path: "no-tokenizer"}
	b: {kind: "causal-lm", path: "no-onnx"}
	c: {kind: "tensor", path: "missing.onnx"}
	d: {kind: "tensor", path: "empty.onnx"}
}
default_model: "good"
`)
	code, _, errOut := runCmd("check", "-config", cfg)
	if code != 1 {
		t.Fatalf("check = %d, want 1\n%s", code, errOut)
	}
	for _, want := range []string{
		`config.cue:3:31: models.a.path: cannot open the model: .*tokenizer.json`,
		`config.cue:4:31: models.b.path: cannot open the model: .*model.onnx`,
		`config.cue:5:28: models.c.path: cannot open the model: .*missing.onnx`,
		`config.cue:6:28: models.d.path: cannot open the model: .*empty.onnx`,
	} {
		if !regexp.MustCompile(want).MatchString(errOut) {
			t.Errorf("check output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "models.good") {
		t.Errorf("the good model was reported:\n%s", errOut)
	}
}
