package modelgen

import (
	"fmt"
	"math"
	"testing"
)

// TestNBitsMatchesTwin runs the int4 tiny-llama and its fp32 twin in ONNX
// Runtime: MatMulNBits over the packed codes computes what MatMul over
// the dequantized weights does, so the logits agree closely. A packing
// mistake (nibble order, block layout, zero point placement) would not.
func TestNBitsMatchesTwin(t *testing.T) {
	for _, opts := range []NBitsOptions{{BlockSize: 32, ZeroPoints: true}, {BlockSize: 16}} {
		t.Run(fmt.Sprintf("block%d-zp%v", opts.BlockSize, opts.ZeroPoints), func(t *testing.T) {
			t.Parallel()
			tiny := TinyLlama()
			q := QuantizeNBits(tiny.Llama, opts)
			m := q.Model("tiny-llama-int4")
			ops := 0
			for _, n := range m.GetGraph().GetNode() {
				if n.GetOpType() == "MatMulNBits" && n.GetDomain() == MicrosoftDomain {
					ops++
				}
			}
			if want := 7*tiny.Config.NumLayers + 1; ops != want {
				t.Errorf("%d MatMulNBits nodes, want %d", ops, want)
			}
			imports := map[string]int64{}
			for _, o := range m.GetOpsetImport() {
				imports[o.GetDomain()] = o.GetVersion()
			}
			if imports[""] != OpsetVersion || imports[MicrosoftDomain] != 1 {
				t.Errorf("opset imports %v", imports)
			}
			in := []string{"input_ids", "attention_mask", "position_ids"}
			out := []string{"logits"}
			for i := range tiny.Config.NumLayers {
				in = append(in, fmt.Sprintf("past_key_values.%d.key", i), fmt.Sprintf("past_key_values.%d.value", i))
				out = append(out, fmt.Sprintf("present.%d.key", i), fmt.Sprintf("present.%d.value", i))
			}
			c := tiny.Config
			run := func(s string) llamaRun {
				model := m
				if s == "twin" {
					model = q.Twin.Model("twin")
				}
				return runLlama(t, newSession(t, model, in, out), c, [][]int64{tinyPrompt}, [][]int64{ones(len(tinyPrompt))}, [][]int64{arange(0, int64(len(tinyPrompt)))}, nil)
			}
			got, want := run("int4"), run("twin")
			for i := range want.logits {
				if d := math.Abs(float64(got.logits[i] - want.logits[i])); d > 1e-3*math.Max(1, math.Abs(float64(want.logits[i]))) {
					t.Fatalf("logit %d: int4 %v, twin %v", i, got.logits[i], want.logits[i])
				}
			}
		})
	}
}

// TestQuantizeNBits checks the quantization error and the packing of a
// small matrix by hand: each weight is within half a step of its
// dequantized value, and the codes sit where MatMulNBits reads them.
func TestQuantizeNBits(t *testing.T) {
	const k, n = 40, 3 // two blocks of 32, the second padded
	w := make([]float32, k*n)
	r := &splitMix64{state: 3}
	for i := range w {
		w[i] = r.uniform()
	}
	for _, opts := range []NBitsOptions{{BlockSize: 32, ZeroPoints: true}, {BlockSize: 32}} {
		q := quantizeNBits(w, k, n, opts)
		if len(q.packed) != n*2*16 || len(q.scales) != n*2 {
			t.Fatalf("packed %d bytes, %d scales", len(q.packed), len(q.scales))
		}
		for row := range k {
			for col := range n {
				b := row / 32
				scale := q.scales[col*2+b]
				zp := 8
				if opts.ZeroPoints {
					zp = int(q.zeroPoints[col] >> (4 * b) & 0xf)
				}
				j := row % 32
				code := int(q.packed[(col*2+b)*16+j/2] >> (4 * (j % 2)) & 0xf)
				if deq := float32(code-zp) * scale; deq != q.dequantized[row*n+col] {
					t.Fatalf("zp %v: w[%d][%d]: the packed code gives %v, dequantized %v", opts.ZeroPoints, row, col, deq, q.dequantized[row*n+col])
				}
				limit := float64(scale) / 2 * 1.0001
				if !opts.ZeroPoints {
					limit = float64(scale) // the top code is clipped
				}
				if d := math.Abs(float64(w[row*n+col] - q.dequantized[row*n+col])); d > limit {
					t.Fatalf("zp %v: w[%d][%d] = %v dequantizes to %v (scale %v)", opts.ZeroPoints, row, col, w[row*n+col], q.dequantized[row*n+col], scale)
				}
			}
		}
	}
}
