package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine/batch"
	"github.com/aiassist/aiassist/engine/modelgen"
)

var rt *Runtime

func TestMain(m *testing.M) {
	var err error
	rt, err = Init(RuntimeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine tests need ONNX Runtime (run packaging/fetch-onnxruntime.sh):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func demoModel(t testing.TB, static int) (string, *modelgen.MLP) {
	t.Helper()
	mlp := modelgen.DemoMLP()
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := modelgen.WriteFile(path, mlp.Model(modelgen.MLPOptions{StaticBatch: static})); err != nil {
		t.Fatal(err)
	}
	return path, mlp
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func closeTo(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-4*math.Max(1, math.Abs(float64(b[i]))) {
			return false
		}
	}
	return true
}

func rowsInput(rows, width int, seed int) []float32 {
	x := make([]float32, rows*width)
	for i := range x {
		x[i] = float32((i*7+seed*13)%17)/8 - 1
	}
	return x
}

func TestFindLibraryListsWhatItTried(t *testing.T) {
	t.Setenv(libraryEnv, "")
	_, err := FindLibrary("/nonexistent/libonnxruntime.so")
	if err == nil || !strings.Contains(err.Error(), "runtime.library") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv(libraryEnv, "/nonexistent/env.so")
	if _, err := FindLibrary(""); err == nil || !strings.Contains(err.Error(), libraryEnv) {
		t.Fatalf("err = %v", err)
	}
}

func TestMLPMatchesPureGo(t *testing.T) {
	path, mlp := demoModel(t, 0)
	set := metrics.NewSet()
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path, Instances: 2, Batching: BatchOptions{Enabled: true, MaxBatchSize: 8, MaxQueueDelay: time.Millisecond, MaxQueueSize: 16}, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Batched() {
		t.Fatal("a model with a dynamic first dimension should be batched")
	}
	in := mlp.Sizes[0]
	for _, rows := range []int{1, 3, 8} {
		x := rowsInput(rows, in, rows)
		out, err := m.Infer(context.Background(), []Tensor{{Name: "input", DataType: FP32, Shape: []int64{int64(rows), int64(in)}, Data: f32Bytes(x)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := bytesF32(out[0].Data), mlp.Forward(x, rows); !closeTo(got, want) {
			t.Fatalf("rows %d: got %v, want %v", rows, got, want)
		}
	}
}

func TestInvalidInputs(t *testing.T) {
	path, _ := demoModel(t, 0)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path, Batching: BatchOptions{Enabled: true, MaxBatchSize: 4, MaxQueueSize: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := func(in []Tensor, outs []string, want string) {
		t.Helper()
		_, err := m.Infer(context.Background(), in, outs)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want ErrInvalidInput containing %q", err, want)
		}
	}
	good := Tensor{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: make([]byte, 16)}
	f(nil, nil, "takes 1 inputs")
	f([]Tensor{{Name: "x", DataType: FP32, Shape: []int64{1, 4}, Data: make([]byte, 16)}}, nil, `needs input "input"`)
	f([]Tensor{{Name: "input", DataType: FP64, Shape: []int64{1, 4}, Data: make([]byte, 32)}}, nil, "must be FP32")
	f([]Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 5}, Data: make([]byte, 20)}}, nil, "must have shape [-1,4]")
	f([]Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: make([]byte, 12)}}, nil, "needs 4 elements")
	f([]Tensor{{Name: "input", DataType: FP32, Shape: []int64{5, 4}, Data: make([]byte, 80)}}, nil, "exceeds max_batch_size 4")
	f([]Tensor{{Name: "input", DataType: FP32, Shape: []int64{0, 4}}}, nil, "is empty")
	f([]Tensor{good}, []string{"nope"}, `no output "nope"`)
}

func TestStaticBatchRunsUnbatched(t *testing.T) {
	path, mlp := demoModel(t, 1)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "static", Path: path, Batching: BatchOptions{Enabled: true, MaxBatchSize: 8, MaxQueueSize: 64}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Batched() {
		t.Fatal("a model with a fixed first dimension must not be batched")
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := rowsInput(1, 4, i)
			out, err := m.Infer(context.Background(), []Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: f32Bytes(x)}}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if !closeTo(bytesF32(out[0].Data), mlp.Forward(x, 1)) {
				t.Error("wrong answer")
			}
		}()
	}
	wg.Wait()
}

// TestConcurrentRequestsBatchAndMatchUnbatched is the batching contract:
// 32 concurrent clients get batches larger than one, and every answer is the
// answer the same request gets alone.
func TestConcurrentRequestsBatchAndMatchUnbatched(t *testing.T) {
	path, mlp := demoModel(t, 0)
	set := metrics.NewSet()
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path, Instances: 1, Batching: BatchOptions{Enabled: true, MaxBatchSize: 32, MaxQueueDelay: 5 * time.Millisecond, MaxQueueSize: 256}, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	alone, err := LoadTensorModel(rt, TensorModelOptions{Name: "alone", Path: path, Batching: BatchOptions{Enabled: false, MaxQueueSize: 256}})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 20 {
				rows := 1 + (c+r)%3
				x := rowsInput(rows, 4, c*100+r)
				in := []Tensor{{Name: "input", DataType: FP32, Shape: []int64{int64(rows), 4}, Data: f32Bytes(x)}}
				got, err := m.Infer(context.Background(), in, nil)
				if err != nil {
					t.Error(err)
					return
				}
				want, err := alone.Infer(context.Background(), in, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if !closeTo(bytesF32(got[0].Data), bytesF32(want[0].Data)) || !closeTo(bytesF32(got[0].Data), mlp.Forward(x, rows)) {
					t.Errorf("client %d request %d: batched answer differs from the unbatched one", c, r)
				}
			}
		}()
	}
	wg.Wait()
	var sb strings.Builder
	set.WritePrometheus(&sb)
	if !batchedAboveOne(t, sb.String(), "demo") {
		t.Fatalf("no batch larger than 1:\n%s", sb.String())
	}
}

// batchedAboveOne reads the batch-size histogram: the count of batches
// minus those in the le="1" bucket.
func batchedAboveOne(t *testing.T, text, model string) bool {
	t.Helper()
	var le1, count float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, `aiassist_batch_size_bucket{model="`+model+`",le="1"}`) {
			fmt.Sscan(strings.Fields(line)[1], &le1)
		}
		if strings.HasPrefix(line, `aiassist_batch_size_count{model="`+model+`"}`) {
			fmt.Sscan(strings.Fields(line)[1], &count)
		}
	}
	return count > le1
}

func TestTypesModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "types.onnx")
	if err := modelgen.WriteFile(path, modelgen.TypesModel()); err != nil {
		t.Fatal(err)
	}
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "types", Path: path, Batching: BatchOptions{Enabled: true, MaxBatchSize: 4, MaxQueueSize: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	le := binary.LittleEndian
	f64 := make([]byte, 16)
	le.PutUint64(f64, math.Float64bits(1.5))
	le.PutUint64(f64[8:], math.Float64bits(-2))
	i32 := make([]byte, 8)
	le.PutUint32(i32, uint32(7))
	le.PutUint32(i32[4:], uint32(0xffffffff)) // -1
	i64 := make([]byte, 16)
	le.PutUint64(i64, 5)
	le.PutUint64(i64[8:], uint64(1<<40))
	in := []Tensor{
		{Name: "f32", DataType: FP32, Shape: []int64{1, 2}, Data: f32Bytes([]float32{1, -3})},
		{Name: "f64", DataType: FP64, Shape: []int64{1, 2}, Data: f64},
		{Name: "i32", DataType: Int32, Shape: []int64{1, 2}, Data: i32},
		{Name: "i64", DataType: Int64, Shape: []int64{1, 2}, Data: i64},
		{Name: "flag", DataType: Bool, Shape: []int64{1, 2}, Data: []byte{1, 0}},
	}
	out, err := m.Infer(context.Background(), in, []string{"f32_out", "f64_out", "i32_out", "i64_out", "flag_out"})
	if err != nil {
		t.Fatal(err)
	}
	if got := bytesF32(out[0].Data); got[0] != 2 || got[1] != -6 {
		t.Errorf("f32_out = %v", got)
	}
	if a, b := math.Float64frombits(le.Uint64(out[1].Data)), math.Float64frombits(le.Uint64(out[1].Data[8:])); a != 2.5 || b != -1 {
		t.Errorf("f64_out = %v %v", a, b)
	}
	if a, b := int32(le.Uint32(out[2].Data)), int32(le.Uint32(out[2].Data[4:])); a != 8 || b != 0 {
		t.Errorf("i32_out = %v %v", a, b)
	}
	if a, b := int64(le.Uint64(out[3].Data)), int64(le.Uint64(out[3].Data[8:])); a != 15 || b != 3<<40 {
		t.Errorf("i64_out = %v %v", a, b)
	}
	if out[4].DataType != Bool || out[4].Data[0] != 0 || out[4].Data[1] != 1 {
		t.Errorf("flag_out = %+v", out[4])
	}
}

func TestClosedModelRefuses(t *testing.T) {
	path, _ := demoModel(t, 0)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path, Batching: BatchOptions{MaxQueueSize: 4}})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	_, err = m.Infer(context.Background(), []Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: make([]byte, 16)}}, nil)
	if !errors.Is(err, ErrClosed) || errors.Is(err, batch.ErrClosed) || !strings.Contains(err.Error(), `"demo"`) {
		t.Fatalf("err = %v, want engine's ErrClosed naming the model, not batch's", err)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := LoadTensorModel(rt, TensorModelOptions{Name: "missing", Path: "/nonexistent/model.onnx"})
	if err == nil || !strings.Contains(err.Error(), `cannot load model "missing"`) {
		t.Fatalf("err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	if _, err := LoadTensorModel(rt, TensorModelOptions{Name: "bad", Path: bad}); err == nil {
		t.Fatal("a garbage file loaded")
	}
}

// TestCheckModelFile checks the files of tensor models the way `check`
// does, and shows that ONNX Runtime agrees: what passes loads, and a
// model whose external data is gone fails both.
func TestCheckModelFile(t *testing.T) {
	dir := t.TempDir()
	mlp := modelgen.NewMLP([]int{4, 128, 4}, 7) // weights of 2 KB go to the data file
	path := filepath.Join(dir, "model.onnx")
	if err := modelgen.WriteFileExternal(path, mlp.Model(modelgen.MLPOptions{}), "model.onnx.data"); err != nil {
		t.Fatal(err)
	}
	if err := CheckModelFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "external", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	x := rowsInput(2, 4, 1)
	out, err := m.Infer(context.Background(), []Tensor{{Name: "input", DataType: FP32, Shape: []int64{2, 4}, Data: f32Bytes(x)}}, nil)
	m.Close()
	if err != nil || !closeTo(bytesF32(out[0].Data), mlp.Forward(x, 2)) {
		t.Fatalf("the model with external data: %v", err)
	}

	f := func(path, want string) {
		t.Helper()
		err := CheckModelFile(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckModelFile(%s) = %v, want an error with %q", path, err, want)
		}
		if _, lerr := LoadTensorModel(rt, TensorModelOptions{Name: "x", Path: path}); lerr == nil {
			t.Errorf("LoadTensorModel(%s) loaded what CheckModelFile refused: %v", path, err)
		}
	}
	data := filepath.Join(dir, "model.onnx.data")
	os.Rename(data, data+".moved")
	f(path, data)
	f(filepath.Join(dir, "missing.onnx"), "missing.onnx: no such file")
	f(dir, "is not a regular file")
	empty := filepath.Join(dir, "empty.onnx")
	os.WriteFile(empty, nil, 0o644)
	f(empty, "empty.onnx is empty")
	unreadable := filepath.Join(dir, "unreadable.onnx")
	os.WriteFile(unreadable, []byte{1}, 0o000)
	if os.Getuid() != 0 { // root reads it anyway
		f(unreadable, "permission denied")
	}
	garbage := filepath.Join(dir, "garbage.onnx")
	os.WriteFile(garbage, []byte("not a model"), 0o644)
	f(garbage, "garbage.onnx is not a valid ONNX model")
}
