package modelgen

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/aiassist/aiassist/engine/onnxpb"
	"google.golang.org/protobuf/proto"
)

func mustMarshal(t *testing.T, m *onnxpb.ModelProto) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	f := func(name string, build func() *onnxpb.ModelProto) {
		t.Helper()
		a, b := mustMarshal(t, build()), mustMarshal(t, build())
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two generations differ (%d and %d bytes)", name, len(a), len(b))
		}
	}
	f("mlp", func() *onnxpb.ModelProto { return NewMLP([]int{32, 64, 64, 8}, 7).Model(MLPOptions{}) })
	f("mlp-static", func() *onnxpb.ModelProto { return NewMLP([]int{5, 3}, 7).Model(MLPOptions{StaticBatch: 4}) })
	for _, p := range Presets() {
		if p.Committed {
			f(p.Name, p.Build)
		}
	}
}

func TestSeedsDiffer(t *testing.T) {
	a, b := NewMLP([]int{8, 8}, 1), NewMLP([]int{8, 8}, 2)
	if a.Weights[0][0] == b.Weights[0][0] && a.Weights[0][1] == b.Weights[0][1] {
		t.Fatal("different seeds gave the same weights")
	}
}

// TestCommittedModels keeps examples/models in step with the generator: if
// this fails after an intended change, regenerate with
// go run ./engine/modelgen/cmd/genmodels -out examples/models -which demo,types,llama,bert
func TestCommittedModels(t *testing.T) {
	for _, p := range Presets() {
		path := filepath.Join("..", "..", "examples", "models", p.Name, "model.onnx")
		got, err := os.ReadFile(path)
		if !p.Committed {
			if err == nil && len(got) > 0 {
				// A big model generated for a benchmark may sit here,
				// ignored by git; it is fine as long as it is not committed.
				t.Logf("%s exists locally; .gitignore keeps it out of the repository", path)
			}
			continue
		}
		if err != nil {
			t.Errorf("committed model missing: %v", err)
			continue
		}
		if want := mustMarshal(t, p.Build()); !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh generation (%d vs %d bytes); regenerate it with "+
				"go run ./engine/modelgen/cmd/genmodels -out examples/models -which demo,types,llama,bert", path, len(got), len(want))
		}
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "model.onnx")
	m := TypesModel()
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got onnxpb.ModelProto
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, m) {
		t.Fatal("model read back differs from the one written")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("want only model.onnx in the directory, got %d entries", len(entries))
	}
}

func TestMLPModelShape(t *testing.T) {
	m := NewMLP([]int{4, 16, 3}, 1)
	f := func(opts MLPOptions, wantBatch *onnxpb.TensorShapeProto_Dimension, wantName string) {
		t.Helper()
		mp := m.Model(opts)
		if mp.GetIrVersion() != 8 || len(mp.OpsetImport) != 1 || mp.OpsetImport[0].GetVersion() != 17 || mp.GetProducerName() != "aiassist-modelgen" {
			t.Fatalf("unexpected model header: ir %d opset %v producer %q", mp.GetIrVersion(), mp.OpsetImport, mp.GetProducerName())
		}
		g := mp.GetGraph()
		if g.GetName() != wantName {
			t.Errorf("graph name %q, want %q", g.GetName(), wantName)
		}
		var ops []string
		for _, n := range g.Node {
			ops = append(ops, n.GetOpType())
		}
		if want := []string{"MatMul", "Add", "Relu", "MatMul", "Add"}; !equalStrings(ops, want) {
			t.Errorf("ops %v, want %v", ops, want)
		}
		for _, vi := range []*onnxpb.ValueInfoProto{g.Input[0], g.Output[0]} {
			d := vi.GetType().GetTensorType().GetShape().GetDim()[0]
			if !proto.Equal(d, wantBatch) {
				t.Errorf("%s: first dim %v, want %v", vi.GetName(), d, wantBatch)
			}
		}
	}
	f(MLPOptions{}, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}}, "mlp")
	f(MLPOptions{StaticBatch: 8, Name: "x"}, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 8}}, "x")
}

func TestMLPWeightScale(t *testing.T) {
	m := NewMLP([]int{256, 64}, 3)
	limit := float32(1 / math.Sqrt(256))
	var sum float64
	for _, w := range m.Weights[0] {
		if w < -limit || w >= limit {
			t.Fatalf("weight %v outside [-%v, %v)", w, limit, limit)
		}
		sum += float64(w)
	}
	if mean := sum / float64(len(m.Weights[0])); math.Abs(mean) > 0.01*float64(limit) {
		t.Errorf("weight mean %v is far from 0", mean)
	}
}

func TestTensorLayout(t *testing.T) {
	f := func(tp *onnxpb.TensorProto, dt onnxpb.TensorProto_DataType, raw []byte) {
		t.Helper()
		if tp.GetDataType() != int32(dt) || !bytes.Equal(tp.GetRawData(), raw) {
			t.Errorf("%s: type %d raw %x, want %d %x", tp.GetName(), tp.GetDataType(), tp.GetRawData(), dt, raw)
		}
	}
	f(Tensor("f", []int64{1}, []float32{1}), onnxpb.TensorProto_FLOAT, []byte{0, 0, 0x80, 0x3f})
	f(Tensor("d", nil, []float64{-2}), onnxpb.TensorProto_DOUBLE, []byte{0, 0, 0, 0, 0, 0, 0, 0xc0})
	f(Tensor("i", []int64{2}, []int32{1, -1}), onnxpb.TensorProto_INT32, []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f(Tensor("l", []int64{1}, []int64{258}), onnxpb.TensorProto_INT64, []byte{2, 1, 0, 0, 0, 0, 0, 0})
	f(Tensor("b", []int64{2}, []bool{true, false}), onnxpb.TensorProto_BOOL, []byte{1, 0})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
