package quantize

import (
	"fmt"
	"strings"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// benchThreads is the intra-op threads of every benchmark session. One
// thread measures the kernels rather than the scheduling of a shared
// 2-core machine, where a second thread mostly waits for a core.
const benchThreads = 1

// BenchmarkMLPForms runs big-mlp (1024→4096→4096→1024) in ONNX Runtime
// directly as FP32 and in each INT8 form, at batch 1 and 32: the
// measurement behind the default Form. The models take turns within each
// iteration, so a load change on the machine hits all alike and the
// ratios hold even when the absolute rates move; each reports rows/s.
func BenchmarkMLPForms(b *testing.B) {
	dir := b.TempDir()
	mlp := modelgen.BigMLP()
	fp32 := writeModel(b, dir, "fp32.onnx", mlp.Model(modelgen.MLPOptions{}))
	type model struct {
		name string
		s    *ort.DynamicAdvancedSession
	}
	models := []model{{"fp32", session(b, fp32, []string{"input"}, []string{"output"}, benchThreads)}}
	for _, f := range []Form{DynamicQuantizeMatMul, MatMulIntegerToFloat, MatMulInteger} {
		p, _ := quantizeFile(b, fp32, dir, fmt.Sprintf("int8-%d.onnx", f), Options{PerChannel: true, MinElements: DefaultMinElements, Form: f})
		models = append(models, model{strings.ReplaceAll(f.String(), "DynamicQuantizeLinear+", "DQL+"), session(b, p, []string{"input"}, []string{"output"}, benchThreads)})
	}
	in, out := mlp.Sizes[0], mlp.Sizes[len(mlp.Sizes)-1]
	for _, rows := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", rows), func(b *testing.B) {
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
			spent := make([]time.Duration, len(models))
			for _, m := range models { // warm up
				if err := m.s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				for i, m := range models {
					start := time.Now()
					if err := m.s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
						b.Fatal(err)
					}
					spent[i] += time.Since(start)
				}
			}
			for i, m := range models {
				b.ReportMetric(float64(b.N*rows)/spent[i].Seconds(), m.name+"_rows/s")
			}
			b.ReportMetric(spent[0].Seconds()/spent[1].Seconds(), "speedup")
		})
	}
}
