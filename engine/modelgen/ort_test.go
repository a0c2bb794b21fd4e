package modelgen

import (
	"math"
	"slices"
	"testing"

	"github.com/aiassist/aiassist/engine/onnxpb"
	ort "github.com/yalue/onnxruntime_go"
)

// newSession loads m into ONNX Runtime from memory.
func newSession(t *testing.T, m *onnxpb.ModelProto, inputs, outputs []string) *ort.DynamicAdvancedSession {
	t.Helper()
	requireORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	// One intra-op thread keeps -race runs quick and the results
	// independent of the machine's core count.
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(mustMarshal(t, m), inputs, outputs, opts)
	if err != nil {
		t.Fatalf("ONNX Runtime rejected the model: %v", err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

func tensor[T ort.TensorData](t *testing.T, data []T, dims ...int64) *ort.Tensor[T] {
	t.Helper()
	v, err := ort.NewTensor(ort.NewShape(dims...), data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Destroy() })
	return v
}

func TestMLPMatchesONNXRuntime(t *testing.T) {
	f := func(name string, sizes []int, seed uint64, static bool) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := NewMLP(sizes, seed)
			in, out := sizes[0], sizes[len(sizes)-1]
			dynamic := newSession(t, m.Model(MLPOptions{}), []string{"input"}, []string{"output"})
			r := &splitMix64{state: 99}
			for _, rows := range []int{1, 3, 8} {
				s := dynamic
				if static {
					s = newSession(t, m.Model(MLPOptions{StaticBatch: rows}), []string{"input"}, []string{"output"})
				}
				x := make([]float32, rows*in)
				for i := range x {
					x[i] = 2 * r.uniform()
				}
				y := tensor(t, make([]float32, rows*out), int64(rows), int64(out))
				if err := s.Run([]ort.Value{tensor(t, x, int64(rows), int64(in))}, []ort.Value{y}); err != nil {
					t.Fatalf("rows=%d: %v", rows, err)
				}
				want := m.Forward(x, rows)
				// ONNX Runtime's MatMul blocks and vectorizes its sums,
				// so it rounds differently from the naive loop; allow
				// relative error with a floor for values near zero.
				for i, got := range y.GetData() {
					tol := 1e-4 * math.Max(1, math.Abs(float64(want[i])))
					if math.Abs(float64(got-want[i])) > tol {
						t.Fatalf("rows=%d: output[%d] = %v, Forward gives %v", rows, i, got, want[i])
					}
				}
			}
		})
	}
	f("demo", DemoMLPSizes, DemoMLPSeed, false)
	f("demo-static", DemoMLPSizes, DemoMLPSeed, true)
	f("wide", []int{256, 512, 512, 10}, 5, false)
	f("single-layer", []int{7, 2}, 9, false)
}

func TestTypesModelOnONNXRuntime(t *testing.T) {
	s := newSession(t, TypesModel(),
		[]string{"f32", "f64", "i32", "i64", "flag"},
		[]string{"f32_out", "f64_out", "i32_out", "i64_out", "flag_out"})
	for _, rows := range []int64{1, 3} {
		n := int(rows * 2)
		f32, f64, i32, i64, flag := make([]float32, n), make([]float64, n), make([]int32, n), make([]int64, n), make([]bool, n)
		wf32, wf64, wi32, wi64, wflag := make([]float32, n), make([]float64, n), make([]int32, n), make([]int64, n), make([]bool, n)
		for i := range n {
			f32[i], wf32[i] = float32(i)-1.5, 2*(float32(i)-1.5)
			f64[i], wf64[i] = 0.25*float64(i), 0.25*float64(i)+1
			// Values at the edge of the type's range catch a server
			// that narrows to a smaller integer or to float.
			i32[i], wi32[i] = int32(i)*1_000_000-7, int32(i)*1_000_000-6
			i64[i], wi64[i] = int64(i)<<40+5, (int64(i)<<40+5)*3
			flag[i], wflag[i] = i%2 == 0, i%2 != 0
		}
		outs := make([]ort.Value, 5)
		err := s.Run([]ort.Value{
			tensor(t, f32, rows, 2), tensor(t, f64, rows, 2), tensor(t, i32, rows, 2),
			tensor(t, i64, rows, 2), tensor(t, flag, rows, 2),
		}, outs)
		if err != nil {
			t.Fatalf("rows=%d: %v", rows, err)
		}
		for _, o := range outs {
			t.Cleanup(func() { o.Destroy() })
			if got := o.GetShape(); !slices.Equal(got, ort.NewShape(rows, 2)) {
				t.Errorf("rows=%d: output shape %v", rows, got)
			}
		}
		check(t, "f32_out", outs[0], wf32)
		check(t, "f64_out", outs[1], wf64)
		check(t, "i32_out", outs[2], wi32)
		check(t, "i64_out", outs[3], wi64)
		check(t, "flag_out", outs[4], wflag)
	}
}

func check[T ort.TensorData](t *testing.T, name string, v ort.Value, want []T) {
	t.Helper()
	tv, ok := v.(*ort.Tensor[T])
	if !ok {
		t.Errorf("%s: got %T, want *ort.Tensor[%T]", name, v, want[0])
		return
	}
	if got := tv.GetData(); !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// TestBigMLPOnONNXRuntime checks that the 100 MB benchmark model loads and
// computes what Forward says, since benchmarks would otherwise be the first
// to notice a broken one.
func TestBigMLPOnONNXRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100 MB model; skipped in -short mode")
	}
	m := BigMLP()
	s := newSession(t, m.Model(MLPOptions{Name: "big-mlp"}), []string{"input"}, []string{"output"})
	const rows = 2
	in, out := m.Sizes[0], m.Sizes[len(m.Sizes)-1]
	r := &splitMix64{state: 42}
	x := make([]float32, rows*in)
	for i := range x {
		x[i] = r.uniform()
	}
	y := tensor(t, make([]float32, rows*out), rows, int64(out))
	if err := s.Run([]ort.Value{tensor(t, x, rows, int64(in))}, []ort.Value{y}); err != nil {
		t.Fatal(err)
	}
	want := m.Forward(x, rows)
	for i, got := range y.GetData() {
		if tol := 1e-4 * math.Max(1, math.Abs(float64(want[i]))); math.Abs(float64(got-want[i])) > tol {
			t.Fatalf("output[%d] = %v, Forward gives %v", i, got, want[i])
		}
	}
}
