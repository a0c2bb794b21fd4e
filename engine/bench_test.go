package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine/modelgen"
)

// benchModels are the two models BENCHMARKS.md reports: the compute-bound
// MLP and the demo MLP where HTTP dominates.
var benchModels = []struct {
	name string
	mlp  func() *modelgen.MLP
}{
	{"big-mlp", modelgen.BigMLP},
	{"demo-mlp", modelgen.DemoMLP},
}

func benchModelFile(b *testing.B, mlp *modelgen.MLP) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "model.onnx")
	if err := modelgen.WriteFile(path, mlp.Model(modelgen.MLPOptions{})); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkSessionCeiling runs the ONNX Runtime session directly, with no
// queue and no HTTP: the ceiling the daemon is compared with.
// Both use 2 intra-op threads, the machine's 2 cores.
func BenchmarkSessionCeiling(b *testing.B) {
	for _, bm := range benchModels {
		mlp := bm.mlp()
		path := benchModelFile(b, mlp)
		so, err := ort.NewSessionOptions()
		if err != nil {
			b.Fatal(err)
		}
		so.SetIntraOpNumThreads(2)
		so.SetInterOpNumThreads(1)
		s, err := ort.NewDynamicAdvancedSession(path, []string{"input"}, []string{"output"}, so)
		so.Destroy()
		if err != nil {
			b.Fatal(err)
		}
		for _, rows := range []int{1, 8, 32, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", bm.name, rows), func(b *testing.B) {
				in, err := ort.NewTensor(ort.NewShape(int64(rows), int64(mlp.Sizes[0])), rowsInput(rows, mlp.Sizes[0], 1))
				if err != nil {
					b.Fatal(err)
				}
				defer in.Destroy()
				out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(rows), int64(mlp.Sizes[len(mlp.Sizes)-1])))
				if err != nil {
					b.Fatal(err)
				}
				defer out.Destroy()
				if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil { // warm up
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
		s.Destroy()
	}
}

// BenchmarkTensorModelInfer adds what the engine adds to a session run:
// validation, the queue, copying in and out.
func BenchmarkTensorModelInfer(b *testing.B) {
	for _, bm := range benchModels {
		mlp := bm.mlp()
		path := benchModelFile(b, mlp)
		m, err := LoadTensorModel(rt, TensorModelOptions{Name: bm.name, Path: path, IntraOpThreads: 2, Batching: BatchOptions{Enabled: true, MaxBatchSize: 64, MaxQueueSize: 64}})
		if err != nil {
			b.Fatal(err)
		}
		for _, rows := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/batch=%d", bm.name, rows), func(b *testing.B) {
				in := []Tensor{{Name: "input", DataType: FP32, Shape: []int64{int64(rows), int64(mlp.Sizes[0])}, Data: f32Bytes(rowsInput(rows, mlp.Sizes[0], 1))}}
				for range b.N {
					if _, err := m.Infer(context.Background(), in, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
		m.Close()
	}
}

// BenchmarkTensorModelConcurrent is the daemon's tensor path without HTTP:
// 64 goroutines each sending one-row requests into the batching queue
// (max_batch_size 32, as examples/bench/bench.cue), against which the
// in-process ceiling at batch 32 and the HTTP figures are read.
func BenchmarkTensorModelConcurrent(b *testing.B) {
	mlp := modelgen.BigMLP()
	path := benchModelFile(b, mlp)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "big-mlp", Path: path, IntraOpThreads: 2, Batching: BatchOptions{Enabled: true, MaxBatchSize: 32, MaxQueueSize: 128, MaxQueueDelay: 2 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	in := []Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, int64(mlp.Sizes[0])}, Data: f32Bytes(rowsInput(1, mlp.Sizes[0], 1))}}
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Infer(context.Background(), in, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
