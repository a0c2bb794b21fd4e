package quantize

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as model.onnx, beside a 64-byte
// model.onnx_data its tensors may point into: Load must return a model or
// an error, never panic or allocate past the files' sizes, and Model must
// then rewrite the model or refuse it, never panic. The seeds under
// testdata/fuzz/FuzzLoad are a small MLP, the same with external data,
// cut-short and bit-flipped copies, and a GenAI Attention node.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx_data"), make([]byte, 64), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "model.onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err != nil {
			if m != nil {
				t.Fatal("Load returned a model and an error")
			}
			return
		}
		for _, opts := range []Options{{}, {PerChannel: true}, {Form: MatMulInteger}} {
			if q, sum, err := Model(m, opts); err == nil && (q == nil || sum == nil) {
				t.Fatal("Model returned neither a model nor an error")
			}
		}
	})
}
