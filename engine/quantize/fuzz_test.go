package quantize

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as model.onnx, beside a 64-byte
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
		// Load after reading the file: writing it each time would make
		// the file system, not the parser, the fuzzer's bottleneck.
		m, err := load(data, filepath.Join(dir, "model.onnx"))
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
