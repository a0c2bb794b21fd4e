package modelgen

import (
	"fmt"
	"math"
	"strings"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// MLP is a fully connected network: Sizes[0] inputs, one layer per following
// size, ReLU between layers and none after the last.
type MLP struct {
	Sizes []int
	// Weights[l] is layer l's weight matrix, row-major [Sizes[l]][Sizes[l+1]],
	// so that the layer computes x·W with x as a row vector.
	Weights [][]float32
	Biases  [][]float32
}

// NewMLP returns an MLP with weights and biases drawn uniformly from
// [-1, 1)/sqrt(fan-in), which keeps activations of order one however wide the
// layers are. Values are drawn layer by layer, weights before biases, from a
// splitmix64 stream seeded with seed.
func NewMLP(sizes []int, seed uint64) *MLP {
	if len(sizes) < 2 {
		panic(fmt.Sprintf("modelgen: an MLP needs at least 2 sizes, got %v", sizes))
	}
	for _, s := range sizes {
		if s <= 0 {
			panic(fmt.Sprintf("modelgen: MLP sizes must be positive, got %v", sizes))
		}
	}
	r := &splitMix64{state: seed}
	m := &MLP{Sizes: append([]int(nil), sizes...)}
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		scale := float32(1 / math.Sqrt(float64(in)))
		w := make([]float32, in*out)
		for i := range w {
			w[i] = r.uniform() * scale
		}
		b := make([]float32, out)
		for i := range b {
			b[i] = r.uniform() * scale
		}
		m.Weights = append(m.Weights, w)
		m.Biases = append(m.Biases, b)
	}
	return m
}

// MLPOptions controls how an MLP is written as an ONNX model.
type MLPOptions struct {
	// StaticBatch fixes the first dimension of input and output. If zero,
	// the dimension is dynamic and named "batch". Default: 0.
	StaticBatch int
	// Name is the graph name. Default: "mlp".
	Name string
}

// Model returns the MLP as an ONNX model with input "input" and output
// "output", both FP32 [batch, features]. Each layer is a MatMul followed by an
// Add of the bias, with Relu between layers.
func (m *MLP) Model(opts MLPOptions) *onnxpb.ModelProto {
	name := opts.Name
	if name == "" {
		name = "mlp"
	}
	batch := Sym("batch")
	if opts.StaticBatch > 0 {
		batch = Fixed(int64(opts.StaticBatch))
	}
	last := len(m.Sizes) - 1
	g := NewGraph(name)
	x := g.Input("input", onnxpb.TensorProto_FLOAT, batch, Fixed(int64(m.Sizes[0])))
	g.Output("output", onnxpb.TensorProto_FLOAT, batch, Fixed(int64(m.Sizes[last])))
	for l := range last {
		in, out := int64(m.Sizes[l]), int64(m.Sizes[l+1])
		p := fmt.Sprintf("layer%d", l)
		w := g.Initializer(Tensor(p+".weight", []int64{in, out}, m.Weights[l]))
		b := g.Initializer(Tensor(p+".bias", []int64{out}, m.Biases[l]))
		x = g.Op("MatMul", p+".matmul", []string{x, w})
		if l == last-1 {
			g.Op("Add", "output", []string{x, b})
			break
		}
		x = g.Op("Add", p+".add", []string{x, b})
		x = g.Op("Relu", p+".relu", []string{x})
	}
	sizes := make([]string, len(m.Sizes))
	for i, s := range m.Sizes {
		sizes[i] = fmt.Sprint(s)
	}
	return g.Model("MLP with layer sizes " + strings.Join(sizes, "x"))
}

// Forward computes the model's output for rows rows of input x (row-major
// [rows][Sizes[0]]) in plain Go, as a reference for ONNX Runtime's result.
// Each dot product accumulates in float32 in index order; the explicit
// float32 conversion stops the compiler from fusing multiply and add, so the
// result is the same on every architecture.
func (m *MLP) Forward(x []float32, rows int) []float32 {
	if len(x) != rows*m.Sizes[0] {
		panic(fmt.Sprintf("modelgen: Forward got %d values for %d rows of %d", len(x), rows, m.Sizes[0]))
	}
	last := len(m.Sizes) - 1
	for l := range last {
		in, out := m.Sizes[l], m.Sizes[l+1]
		w, b := m.Weights[l], m.Biases[l]
		y := make([]float32, rows*out)
		for r := range rows {
			xr := x[r*in : (r+1)*in]
			for j := range out {
				var acc float32
				for i, xi := range xr {
					acc += float32(xi * w[i*out+j])
				}
				v := acc + b[j]
				if l < last-1 && v < 0 {
					v = 0
				}
				y[r*out+j] = v
			}
		}
		x = y
	}
	return x
}
