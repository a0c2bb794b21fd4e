package quantize

import (
	"fmt"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// BenchmarkMLPForms runs big-mlp (1024→4096→4096→1024) in ONNX Runtime
// directly, with 2 intra-op threads, as FP32 and in each INT8 form, at
// batch 1 and 32: the measurement behind the default Form.
func BenchmarkMLPForms(b *testing.B) {
	dir := b.TempDir()
	mlp := modelgen.BigMLP()
	fp32 := writeModel(b, dir, "fp32.onnx", mlp.Model(modelgen.MLPOptions{}))
	models := []struct{ name, path string }{{"fp32", fp32}}
	for _, f := range []Form{DynamicQuantizeMatMul, MatMulIntegerToFloat, MatMulInteger} {
		p, _ := quantizeFile(b, fp32, dir, fmt.Sprintf("int8-%d.onnx", f), Options{PerChannel: true, MinElements: DefaultMinElements, Form: f})
		models = append(models, struct{ name, path string }{f.String(), p})
	}
	in, out := mlp.Sizes[0], mlp.Sizes[len(mlp.Sizes)-1]
	for _, m := range models {
		s := session(b, m.path, []string{"input"}, []string{"output"}, 2)
		for _, rows := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/batch=%d", m.name, rows), func(b *testing.B) {
				x, err := ort.NewTensor(ort.NewShape(int64(rows), int64(in)), testInput(rows, in, 1))
				if err != nil {
					b.Fatal(err)
				}
				defer x.Destroy()
				y, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(rows), int64(out)))
				if err != nil {
					b.Fatal(err)
				}
				defer y.Destroy()
				if err := s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
	_ = filepath.Join
}
