package modelgen

import (
	"fmt"
	"math"

	"github.com/aiassist/aiassist/engine/onnxpb"
	"google.golang.org/protobuf/proto"
)

// MicrosoftDomain is the operator domain of ONNX Runtime's contrib ops.
const MicrosoftDomain = "com.microsoft"

// NBitsOptions configures 4-bit block-wise weight quantization, the
// format of ONNX Runtime's MatMulNBits (what its MatMul4BitsQuantizer
// writes).
type NBitsOptions struct {
	// BlockSize is the number of weights along K that share a scale: a
	// power of two of at least 16. Default: 32.
	BlockSize int
	// ZeroPoints stores a 4-bit zero point per block (asymmetric
	// quantization over the block's range). Without them the operator's
	// default zero point 8 applies and the blocks are symmetric.
	ZeroPoints bool
}

// NBitsLlama is a Llama decoder whose projections are quantized to 4-bit
// blocks. Twin is the same decoder with each projection replaced by its
// dequantized weights, so the fp32 twin computes what the int4 model
// computes, up to the order of float operations.
type NBitsLlama struct {
	Twin    *Llama
	Options NBitsOptions
	weights map[string]*nbitsMatrix // by initializer name
}

// QuantizeNBits quantizes every projection of m (q, k, v, o, gate, up,
// down and lm_head) to 4 bits; m is not changed.
func QuantizeNBits(m *Llama, opts NBitsOptions) *NBitsLlama {
	if opts.BlockSize == 0 {
		opts.BlockSize = 32
	}
	if opts.BlockSize < 16 || opts.BlockSize&(opts.BlockSize-1) != 0 {
		panic(fmt.Sprintf("modelgen: MatMulNBits block size %d must be a power of two of at least 16", opts.BlockSize))
	}
	c := m.Config
	twin := *m
	twin.Layers = make([]LlamaLayer, len(m.Layers))
	q := &NBitsLlama{Twin: &twin, Options: opts, weights: map[string]*nbitsMatrix{}}
	quant := func(name string, w []float32, k, n int) []float32 {
		qm := quantizeNBits(w, k, n, opts)
		q.weights[name+".weight"] = qm
		return qm.dequantized
	}
	h, qDim, kvDim := c.HiddenSize, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	for i, l := range m.Layers {
		p := fmt.Sprintf("model.layers.%d", i)
		l.Q = quant(p+".self_attn.q_proj", l.Q, h, qDim)
		l.K = quant(p+".self_attn.k_proj", l.K, h, kvDim)
		l.V = quant(p+".self_attn.v_proj", l.V, h, kvDim)
		l.O = quant(p+".self_attn.o_proj", l.O, qDim, h)
		l.Gate = quant(p+".mlp.gate_proj", l.Gate, h, c.IntermediateSize)
		l.Up = quant(p+".mlp.up_proj", l.Up, h, c.IntermediateSize)
		l.Down = quant(p+".mlp.down_proj", l.Down, c.IntermediateSize, h)
		twin.Layers[i] = l
	}
	twin.LMHead = quant("lm_head", m.LMHead, h, c.VocabSize)
	return q
}

// TinyLlamaInt4 is tiny-llama with its projections in 4-bit blocks of 32
// with zero points, as ONNX Runtime's MatMul4BitsQuantizer writes them.
func TinyLlamaInt4() *NBitsLlama {
	return QuantizeNBits(TinyLlama().Llama, NBitsOptions{BlockSize: 32, ZeroPoints: true})
}

// Model returns the int4 decoder: the twin's graph with each projection's
// MatMul replaced by a com.microsoft MatMulNBits node (bits 4) over the
// packed weights, their scales and, with ZeroPoints, zero points. Its I/O
// is Llama.Model's.
func (q *NBitsLlama) Model(name string) *onnxpb.ModelProto {
	m := q.Twin.Model(name)
	g := m.Graph
	replaced := map[string]bool{}
	for _, n := range g.Node {
		if n.GetOpType() != "MatMul" || len(n.Input) != 2 || q.weights[n.Input[1]] == nil {
			continue
		}
		w := q.weights[n.Input[1]]
		inputs := []string{n.Input[0], n.Input[1] + ".q4", n.Input[1] + ".scales"}
		if w.zeroPoints != nil {
			inputs = append(inputs, n.Input[1]+".zero_points")
		}
		replaced[n.Input[1]] = true
		n.OpType = proto.String("MatMulNBits")
		n.Domain = proto.String(MicrosoftDomain)
		n.Name = proto.String(n.Output[0] + "/MatMulNBits")
		n.Input = inputs
		n.Attribute = []*onnxpb.AttributeProto{
			AttrInt("K", int64(w.k)), AttrInt("N", int64(w.n)),
			AttrInt("bits", 4), AttrInt("block_size", int64(w.blockSize)),
		}
	}
	var inits []*onnxpb.TensorProto
	for _, t := range g.Initializer {
		w := q.weights[t.GetName()]
		if !replaced[t.GetName()] {
			inits = append(inits, t)
			continue
		}
		inits = append(inits, uint8Tensor(t.GetName()+".q4", []int64{int64(w.n), int64(w.blocks), int64(w.blockSize / 2)}, w.packed))
		inits = append(inits, Tensor(t.GetName()+".scales", []int64{int64(len(w.scales))}, w.scales))
		if w.zeroPoints != nil {
			inits = append(inits, uint8Tensor(t.GetName()+".zero_points", []int64{int64(len(w.zeroPoints))}, w.zeroPoints))
		}
	}
	if len(replaced) != len(q.weights) {
		panic(fmt.Sprintf("modelgen: %d of %d quantized projections found in the graph", len(replaced), len(q.weights)))
	}
	g.Initializer = inits
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(MicrosoftDomain), Version: proto.Int64(1)})
	m.DocString = proto.String(m.GetDocString() + fmt.Sprintf("; projections int4 (MatMulNBits, block %d, zero points %v)", q.Options.BlockSize, q.Options.ZeroPoints))
	return m
}

// nbitsMatrix is a [k][n] weight matrix in MatMulNBits' layout: for each
// of the n output columns, ceil(k/blockSize) blocks of blockSize 4-bit
// codes, two per byte with the even index in the low nibble; a float
// scale per (column, block) and, optionally, a 4-bit zero point per
// (column, block), packed the same way per column.
type nbitsMatrix struct {
	k, n, blockSize, blocks int
	packed                  []uint8   // [n][blocks][blockSize/2]
	scales                  []float32 // [n*blocks]
	zeroPoints              []uint8   // [n][ceil(blocks/2)], or nil
	dequantized             []float32 // [k][n], what the codes stand for
}

// quantizeNBits quantizes w, row-major [k][n]. With zero points a block
// maps its range [min(w, 0), max(w, 0)] onto codes 0..15; without, codes
// are centred on 8 and the block's largest magnitude maps to ±8.
func quantizeNBits(w []float32, k, n int, opts NBitsOptions) *nbitsMatrix {
	bs := opts.BlockSize
	blocks := (k + bs - 1) / bs
	m := &nbitsMatrix{k: k, n: n, blockSize: bs, blocks: blocks,
		packed: make([]uint8, n*blocks*bs/2), scales: make([]float32, n*blocks), dequantized: make([]float32, k*n)}
	zpStride := (blocks + 1) / 2
	if opts.ZeroPoints {
		m.zeroPoints = make([]uint8, n*zpStride)
	}
	for col := range n {
		for b := range blocks {
			lo, hi := float32(0), float32(0)
			for r := b * bs; r < min(k, (b+1)*bs); r++ {
				lo, hi = min(lo, w[r*n+col]), max(hi, w[r*n+col])
			}
			var scale float32
			zp := 8
			if opts.ZeroPoints {
				scale = (hi - lo) / 15
				if scale > 0 {
					zp = int(math.Round(float64(-lo / scale)))
				} else {
					zp = 0
				}
				zp = max(0, min(15, zp))
				m.zeroPoints[col*zpStride+b/2] |= uint8(zp) << (4 * (b % 2))
			} else {
				scale = max(hi, -lo) / 8
			}
			if scale == 0 {
				scale = 1
			}
			m.scales[col*blocks+b] = scale
			for j := range bs {
				code := zp // padding past k dequantizes to 0
				if r := b*bs + j; r < k {
					code = int(math.Round(float64(w[r*n+col]/scale))) + zp
					code = max(0, min(15, code))
					m.dequantized[r*n+col] = float32(code-zp) * scale
				}
				m.packed[(col*blocks+b)*bs/2+j/2] |= uint8(code) << (4 * (j % 2))
			}
		}
	}
	return m
}

func uint8Tensor(name string, dims []int64, data []uint8) *onnxpb.TensorProto {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	if n != int64(len(data)) {
		panic(fmt.Sprintf("modelgen: tensor %q has dims %v but %d values", name, dims, len(data)))
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     append([]int64(nil), dims...),
		DataType: proto.Int32(int32(onnxpb.TensorProto_UINT8)),
		RawData:  append([]byte(nil), data...),
	}
}
