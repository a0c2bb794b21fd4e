package modelgen

import (
	"fmt"
	"math"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// LlamaConfig is the shape of a Llama-style decoder. Field names follow the
// keys of a Hugging Face config.json.
type LlamaConfig struct {
	VocabSize        int
	HiddenSize       int
	NumLayers        int
	NumHeads         int
	NumKVHeads       int // fewer than NumHeads means grouped-query attention
	HeadDim          int
	IntermediateSize int
	MaxPositions     int
	RopeTheta        float64
	RMSNormEps       float32
}

// LlamaLayer holds one decoder layer's weights. Projections are row-major
// [in][out], so a layer computes x·W with x as a row vector, the transpose of
// PyTorch's nn.Linear layout.
type LlamaLayer struct {
	InputNorm  []float32 // [hidden]
	Q, K, V, O []float32 // [hidden][heads*head_dim], [hidden][kv_heads*head_dim] (K, V), [heads*head_dim][hidden] (O)
	PostNorm   []float32 // [hidden]
	Gate, Up   []float32 // [hidden][intermediate]
	Down       []float32 // [intermediate][hidden]
}

// Llama is a Llama-style decoder with its weights: token embedding,
// NumLayers layers of RMSNorm, rotary self-attention and a SwiGLU MLP, a
// final RMSNorm and an untied lm_head with a bias.
type Llama struct {
	Config    LlamaConfig
	Embed     []float32 // [vocab][hidden]
	Layers    []LlamaLayer
	FinalNorm []float32 // [hidden]
	LMHead    []float32 // [hidden][vocab]
	// LMBias is added to the logits. Llama has none; here it steers greedy
	// decoding of random weights away from tokens a test does not want.
	LMBias []float32 // [vocab]
}

// NewLlama returns a decoder of shape c with weights drawn from a
// splitmix64 stream seeded with seed: the embedding, then each layer's
// InputNorm, Q, K, V, O, PostNorm, Gate, Up, Down, then FinalNorm and LMHead.
// Projections are uniform in [-gain, gain)/sqrt(fan-in); norms are 1 ± 0.1.
// LMBias is zero; callers set it.
func NewLlama(c LlamaConfig, seed uint64, gain float32) *Llama {
	if c.NumHeads%c.NumKVHeads != 0 || c.HeadDim%2 != 0 {
		panic(fmt.Sprintf("modelgen: bad Llama config %+v: heads must be a multiple of kv heads and head_dim even", c))
	}
	r := &splitMix64{state: seed}
	mat := func(in, out int) []float32 {
		w := make([]float32, in*out)
		scale := gain / float32(math.Sqrt(float64(in)))
		for i := range w {
			w[i] = r.uniform() * scale
		}
		return w
	}
	norm := func() []float32 {
		w := make([]float32, c.HiddenSize)
		for i := range w {
			w[i] = 1 + 0.1*r.uniform()
		}
		return w
	}
	h, q, kv := c.HiddenSize, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	m := &Llama{Config: c, Embed: make([]float32, c.VocabSize*h)}
	for i := range m.Embed {
		m.Embed[i] = r.uniform()
	}
	for range c.NumLayers {
		m.Layers = append(m.Layers, LlamaLayer{
			InputNorm: norm(),
			Q:         mat(h, q), K: mat(h, kv), V: mat(h, kv), O: mat(q, h),
			PostNorm: norm(),
			Gate:     mat(h, c.IntermediateSize), Up: mat(h, c.IntermediateSize), Down: mat(c.IntermediateSize, h),
		})
	}
	m.FinalNorm = norm()
	m.LMHead = mat(h, c.VocabSize)
	m.LMBias = make([]float32, c.VocabSize)
	return m
}

// maskedScore replaces the attention score of a masked position. It is
// large and finite rather than -Inf: a query row whose keys are all masked
// (a left-padding row) then gets a uniform softmax instead of NaN.
const maskedScore = -1e9

// Model returns the decoder as an ONNX model with Hugging Face Optimum's
// decoder-with-past I/O. Inputs: input_ids INT64 [batch_size,
// sequence_length]; attention_mask INT64 [batch_size, total_sequence_length]
// (1 attend, 0 padding); position_ids INT64 [batch_size, sequence_length];
// past_key_values.{i}.key and .value FP32 [batch_size, kv_heads,
// past_sequence_length, head_dim], which may be 0 long. Outputs: logits FP32
// [batch_size, sequence_length, vocab] and present.{i}.key and .value, the
// past with this step's keys and values appended.
//
// The model uses only standard opset-17 operators, so any ONNX Runtime build
// (and any other runtime) runs it without contrib ops.
func (m *Llama) Model(name string) *onnxpb.ModelProto {
	c := m.Config
	f32, i64 := onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT64
	batch, seq := Sym("batch_size"), Sym("sequence_length")
	past, total := Sym("past_sequence_length"), Sym("total_sequence_length")
	kvHeads, headDim := Fixed(int64(c.NumKVHeads)), Fixed(int64(c.HeadDim))

	g := NewGraph(name)
	ids := g.Input("input_ids", i64, batch, seq)
	mask := g.Input("attention_mask", i64, batch, total)
	pos := g.Input("position_ids", i64, batch, seq)
	for i := range c.NumLayers {
		g.Input(fmt.Sprintf("past_key_values.%d.key", i), f32, batch, kvHeads, past, headDim)
		g.Input(fmt.Sprintf("past_key_values.%d.value", i), f32, batch, kvHeads, past, headDim)
	}
	g.Output("logits", f32, batch, seq, Fixed(int64(c.VocabSize)))
	for i := range c.NumLayers {
		g.Output(fmt.Sprintf("present.%d.key", i), f32, batch, kvHeads, total, headDim)
		g.Output(fmt.Sprintf("present.%d.value", i), f32, batch, kvHeads, total, headDim)
	}

	ints := func(name string, v ...int64) string { return g.Initializer(Tensor(name, []int64{int64(len(v))}, v)) }
	scalarInt := func(name string, v int64) string { return g.Initializer(Tensor(name, nil, []int64{v})) }
	scalar := func(name string, v float32) string { return g.Initializer(Tensor(name, nil, []float32{v})) }
	axis0, axis1, axis2, axes12 := ints("axes_0", 0), ints("axes_1", 1), ints("axes_2", 2), ints("axes_1_2", 1, 2)
	zero, one := scalarInt("zero", 0), scalarInt("one", 1)

	// The mask is computed once for all layers. Key slot k of the cache holds
	// absolute position k, so query j (absolute past+j) may see slots
	// k <= past+j whose attention_mask is set; this is the causal mask and
	// the padding mask in one [batch, 1, seq, total] boolean.
	seqLen := g.Op("Gather", "seq_len", []string{g.Op("Shape", "input_ids_shape", []string{ids}), one}, AttrInt("axis", 0))
	totalLen := g.Op("Gather", "total_len", []string{g.Op("Shape", "attention_mask_shape", []string{mask}), one}, AttrInt("axis", 0))
	pastLen := g.Op("Sub", "past_len", []string{totalLen, seqLen})
	keyPos := g.Op("Unsqueeze", "key_pos", []string{g.Op("Range", "key_range", []string{zero, totalLen, one}), axis0})
	queryPos := g.Op("Unsqueeze", "query_pos", []string{g.Op("Range", "query_range", []string{pastLen, totalLen, one}), axis1})
	causal := g.Op("LessOrEqual", "causal", []string{keyPos, queryPos})
	notPad := g.Op("Equal", "not_pad", []string{mask, one})
	notPad = g.Op("Unsqueeze", "not_pad_4d", []string{notPad, axes12})
	allowed := g.Op("And", "attend", []string{causal, notPad})
	masked := scalar("masked_score", maskedScore)

	// Rotary embedding: angle = position * inv_freq, duplicated over the two
	// halves of a head as in Hugging Face's rotate_half formulation.
	half := c.HeadDim / 2
	invFreq := make([]float32, half)
	for i := range invFreq {
		invFreq[i] = float32(1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim)))
	}
	posF := g.Op("Cast", "position_f", []string{pos}, AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	freqs := g.Op("Mul", "rope_freqs", []string{
		g.Op("Unsqueeze", "position_3d", []string{posF, axis2}),
		g.Initializer(Tensor("rope.inv_freq", []int64{int64(half)}, invFreq)),
	})
	angles := g.Op("Concat", "rope_angles", []string{freqs, freqs}, AttrInt("axis", -1))
	cos := g.Op("Unsqueeze", "rope_cos", []string{g.Op("Cos", "", []string{angles}), axis1})
	sin := g.Op("Unsqueeze", "rope_sin", []string{g.Op("Sin", "", []string{angles}), axis1})
	lo, hi, end, last := ints("rope_lo", 0), ints("rope_hi", int64(half)), ints("rope_end", int64(c.HeadDim)), ints("axes_last", -1)
	rope := func(p, x string) string {
		x1 := g.Op("Slice", p+"_x1", []string{x, lo, hi, last})
		x2 := g.Op("Slice", p+"_x2", []string{x, hi, end, last})
		rot := g.Op("Concat", p+"_rot", []string{g.Op("Neg", "", []string{x2}), x1}, AttrInt("axis", -1))
		return g.Op("Add", p+"_rope", []string{
			g.Op("Mul", "", []string{x, cos}),
			g.Op("Mul", "", []string{rot, sin}),
		})
	}

	two, eps := scalar("two", 2), scalar("rms_norm_eps", c.RMSNormEps)
	rmsNorm := func(p, x string, w []float32) string {
		ms := g.Op("ReduceMean", p+"_ms", []string{g.Op("Pow", "", []string{x, two})}, AttrInts("axes", -1), AttrInt("keepdims", 1))
		rms := g.Op("Sqrt", p+"_rms", []string{g.Op("Add", "", []string{ms, eps})})
		return g.Op("Mul", p, []string{
			g.Op("Div", "", []string{x, rms}),
			g.Initializer(Tensor(p+".weight", []int64{int64(c.HiddenSize)}, w)),
		})
	}
	linear := func(p, x string, w []float32, in, out int) string {
		return g.Op("MatMul", p, []string{x, g.Initializer(Tensor(p+".weight", []int64{int64(in), int64(out)}, w))})
	}

	h, qDim, kvDim := c.HiddenSize, c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	headsShape := ints("heads_shape", 0, 0, int64(c.NumHeads), int64(c.HeadDim))
	kvHeadsShape := ints("kv_heads_shape", 0, 0, int64(c.NumKVHeads), int64(c.HeadDim))
	rep := c.NumHeads / c.NumKVHeads
	repeatShape := ints("repeat_kv_expand", 1, 1, int64(rep), 1, 1)
	repeatedShape := ints("repeat_kv_shape", 0, int64(c.NumHeads), -1, int64(c.HeadDim))
	hiddenShape := ints("hidden_shape", 0, 0, int64(qDim))
	scale := scalar("attn_scale", float32(1/math.Sqrt(float64(c.HeadDim))))
	toHeads := []*onnxpb.AttributeProto{AttrInts("perm", 0, 2, 1, 3)}

	x := g.Op("Gather", "embed", []string{g.Initializer(Tensor("model.embed_tokens.weight", []int64{int64(c.VocabSize), int64(h)}, m.Embed)), ids}, AttrInt("axis", 0))
	for i, l := range m.Layers {
		p := fmt.Sprintf("model.layers.%d", i)
		a := rmsNorm(p+".input_layernorm", x, l.InputNorm)
		q := linear(p+".self_attn.q_proj", a, l.Q, h, qDim)
		k := linear(p+".self_attn.k_proj", a, l.K, h, kvDim)
		v := linear(p+".self_attn.v_proj", a, l.V, h, kvDim)
		q = g.Op("Transpose", p+".q_heads", []string{g.Op("Reshape", "", []string{q, headsShape})}, toHeads...)
		k = g.Op("Transpose", p+".k_heads", []string{g.Op("Reshape", "", []string{k, kvHeadsShape})}, toHeads...)
		v = g.Op("Transpose", p+".v_heads", []string{g.Op("Reshape", "", []string{v, kvHeadsShape})}, toHeads...)
		q, k = rope(p+".q", q), rope(p+".k", k)
		k = g.Op("Concat", fmt.Sprintf("present.%d.key", i), []string{fmt.Sprintf("past_key_values.%d.key", i), k}, AttrInt("axis", 2))
		v = g.Op("Concat", fmt.Sprintf("present.%d.value", i), []string{fmt.Sprintf("past_key_values.%d.value", i), v}, AttrInt("axis", 2))
		if rep > 1 {
			// Grouped-query attention: query head n reads kv head n/rep,
			// as Hugging Face's repeat_kv arranges it.
			repeat := func(x string) string {
				x = g.Op("Expand", "", []string{g.Op("Unsqueeze", "", []string{x, axis2}), repeatShape})
				return g.Op("Reshape", "", []string{x, repeatedShape})
			}
			k, v = repeat(k), repeat(v)
		}
		kT := g.Op("Transpose", "", []string{k}, AttrInts("perm", 0, 1, 3, 2))
		scores := g.Op("Mul", p+".scores", []string{g.Op("MatMul", "", []string{q, kT}), scale})
		scores = g.Op("Where", p+".masked_scores", []string{allowed, scores, masked})
		probs := g.Op("Softmax", p+".probs", []string{scores}, AttrInt("axis", -1))
		ctx := g.Op("Transpose", "", []string{g.Op("MatMul", p+".context", []string{probs, v})}, toHeads...)
		ctx = g.Op("Reshape", "", []string{ctx, hiddenShape})
		x = g.Op("Add", p+".attn_residual", []string{x, linear(p+".self_attn.o_proj", ctx, l.O, qDim, h)})

		a = rmsNorm(p+".post_attention_layernorm", x, l.PostNorm)
		gate := linear(p+".mlp.gate_proj", a, l.Gate, h, c.IntermediateSize)
		up := linear(p+".mlp.up_proj", a, l.Up, h, c.IntermediateSize)
		act := g.Op("Mul", p+".mlp.act", []string{gate, g.Op("Sigmoid", "", []string{gate})})
		down := linear(p+".mlp.down_proj", g.Op("Mul", "", []string{act, up}), l.Down, c.IntermediateSize, h)
		x = g.Op("Add", p+".mlp_residual", []string{x, down})
	}
	x = rmsNorm("model.norm", x, m.FinalNorm)
	x = linear("lm_head", x, m.LMHead, h, c.VocabSize)
	g.Op("Add", "logits", []string{x, g.Initializer(Tensor("lm_head.bias", []int64{int64(c.VocabSize)}, m.LMBias))})
	return g.Model(fmt.Sprintf("Llama-style decoder: %d layers, hidden %d, %d heads (%d kv), head_dim %d, vocab %d; random weights",
		c.NumLayers, h, c.NumHeads, c.NumKVHeads, c.HeadDim, c.VocabSize))
}
