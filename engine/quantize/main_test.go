package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

// TestMain loads ONNX Runtime once, through the engine, as the daemon
// does: the quantized models must pass the real runtime's loader.
func TestMain(m *testing.M) {
	if _, err := engine.Init(engine.RuntimeOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "quantize tests need ONNX Runtime (run packaging/fetch-onnxruntime.sh):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// session opens the model file at path in ONNX Runtime with threads
// intra-op threads.
func session(t testing.TB, path string, inputs, outputs []string, threads int) *ort.DynamicAdvancedSession {
	t.Helper()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	if err != nil {
		t.Fatalf("ONNX Runtime rejected %s: %v", filepath.Base(path), err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

// writeModel writes m into the test's folder as name.
func writeModel(t testing.TB, dir, name string, m *onnxpb.ModelProto) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := modelgen.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// quantizeFile quantizes in to dir/name with opts and returns its path.
func quantizeFile(t testing.TB, in, dir, name string, opts Options) (string, *Summary) {
	t.Helper()
	out := filepath.Join(dir, name)
	sum, err := File(in, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out, sum
}

// runFloat runs a session of one FP32 input and one FP32 output.
func runFloat(t testing.TB, s *ort.DynamicAdvancedSession, x []float32, inShape, outShape []int64) []float32 {
	t.Helper()
	in, err := ort.NewTensor(ort.Shape(inShape), x)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	n := int64(1)
	for _, d := range outShape {
		n *= d
	}
	out, err := ort.NewTensor(ort.Shape(outShape), make([]float32, n))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out.GetData()...)
}

// cosine is the cosine similarity of a and b.
func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// testInput is a deterministic [rows][cols] input in [-2, 2).
func testInput(rows, cols int, seed uint64) []float32 {
	x := make([]float32, rows*cols)
	s := seed
	for i := range x {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		x[i] = float32(z>>40)/float32(1<<24)*4 - 2
	}
	return x
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
