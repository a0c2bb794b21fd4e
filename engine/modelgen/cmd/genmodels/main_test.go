package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	f := func(which string, wantFiles []string, wantErr string) {
		t.Helper()
		dir := t.TempDir()
		err := run(dir, which)
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("run(%q): err %v, want %q", which, err, wantErr)
		}
		got, _ := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
		for i := range got {
			got[i], _ = filepath.Rel(dir, got[i])
		}
		if strings.Join(got, ",") != strings.Join(wantFiles, ",") {
			t.Fatalf("run(%q) wrote %v, want %v", which, got, wantFiles)
		}
		for _, g := range got {
			if st, err := os.Stat(filepath.Join(dir, g)); err != nil || st.Size() == 0 {
				t.Fatalf("%s: %v", g, err)
			}
		}
	}
	f("demo", []string{"demo-mlp/model.onnx"}, "")
	f("demo, types", []string{"demo-mlp/model.onnx", "types/model.onnx"}, "")
	f("types,demo-mlp", []string{"demo-mlp/model.onnx", "types/model.onnx"}, "")
	f("llama", []string{"tiny-llama/model.onnx"}, "")
	f("bert", []string{"tiny-bert/model.onnx"}, "")
	// A typo must not leave a partly written directory.
	f("demo,tpyes", nil, `unknown model "tpyes"`)
}

// TestRunWritesFolder checks that a model with side files, such as
// tiny-llama's tokenizer, is written as a whole folder.
func TestRunWritesFolder(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, "llama"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.onnx", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"} {
		if st, err := os.Stat(filepath.Join(dir, "tiny-llama", name)); err != nil || st.Size() == 0 {
			t.Errorf("tiny-llama/%s: %v", name, err)
		}
	}
}
