package modelgen

import (
	"math"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// runEncoder runs the encoder graph on rows of equal length and returns
// last_hidden_state flattened.
func runEncoder(t *testing.T, s *ort.DynamicAdvancedSession, hidden int, ids, mask, types [][]int64) []float32 {
	t.Helper()
	rows, seq := int64(len(ids)), int64(len(ids[0]))
	in := []ort.Value{
		tensor(t, slices.Concat(ids...), rows, seq),
		tensor(t, slices.Concat(mask...), rows, seq),
		tensor(t, slices.Concat(types...), rows, seq),
	}
	out := []ort.Value{nil}
	if err := s.Run(in, out); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() { out[0].Destroy() })
	h := out[0].(*ort.Tensor[float32])
	if want := ort.NewShape(rows, seq, int64(hidden)); !slices.Equal(h.GetShape(), want) {
		t.Fatalf("last_hidden_state shape %v, want %v", h.GetShape(), want)
	}
	return h.GetData()
}

// TestEncoderMatchesForward checks the ONNX graph against the pure-Go
// forward pass of the same weights, unpadded and right-padded: padding
// must not change the outputs at the attended positions.
func TestEncoderMatchesForward(t *testing.T) {
	t.Parallel()
	m := TinyBert()
	c := m.Config
	s := newSession(t, m.Model(), []string{"input_ids", "attention_mask", "token_type_ids"}, []string{"last_hidden_state"})
	ids := [][]int64{{2, 150, 151, 60, 3}, {2, 170, 3, 0, 0}}
	mask := [][]int64{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}
	types := [][]int64{{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}}
	got := runEncoder(t, s, c.HiddenSize, ids, mask, types)
	want := m.Forward(ids, mask, types)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 || math.IsNaN(float64(got[i])) {
			t.Fatalf("value %d: ONNX Runtime %v, Go %v", i, got[i], want[i])
		}
	}
	// Row 1 alone, unpadded, equals its padded run at its 3 positions.
	alone := runEncoder(t, s, c.HiddenSize, [][]int64{ids[1][:3]}, [][]int64{mask[1][:3]}, [][]int64{types[1][:3]})
	off := 5 * c.HiddenSize
	for i := range alone {
		if d := math.Abs(float64(alone[i] - got[off+i])); d > 1e-5 {
			t.Fatalf("padded row differs at %d: %v alone, %v padded", i, alone[i], got[off+i])
		}
	}
	// Token types matter: type 1 changes the output.
	types1 := runEncoder(t, s, c.HiddenSize, [][]int64{ids[0]}, [][]int64{mask[0]}, [][]int64{{1, 1, 1, 1, 1}})
	if slices.Equal(types1, got[:5*c.HiddenSize]) {
		t.Fatal("token_type_ids have no effect")
	}
}

// TestTinyBertOps keeps the encoder to standard opset-17 operators.
func TestTinyBertOps(t *testing.T) {
	allowed := map[string]bool{"Add": true, "Div": true, "Equal": true, "Erf": true, "Gather": true, "LayerNormalization": true,
		"MatMul": true, "Mul": true, "Range": true, "Reshape": true, "Shape": true, "Softmax": true, "Transpose": true, "Unsqueeze": true, "Where": true}
	for _, n := range TinyBert().Model().GetGraph().GetNode() {
		if !allowed[n.GetOpType()] || n.GetDomain() != "" {
			t.Errorf("node %s uses %s (domain %q)", n.GetName(), n.GetOpType(), n.GetDomain())
		}
	}
}
