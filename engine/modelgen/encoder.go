package modelgen

import (
	"fmt"
	"math"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// EncoderConfig is the shape of a BERT-style encoder. Field names follow the
// keys of a Hugging Face config.json.
type EncoderConfig struct {
	VocabSize        int
	HiddenSize       int
	NumLayers        int
	NumHeads         int
	IntermediateSize int
	MaxPositions     int
	TypeVocabSize    int
	LayerNormEps     float32
}

// EncoderLayer holds one encoder layer's weights. Projections are row-major
// [in][out], so a layer computes x·W + b with x as a row vector.
type EncoderLayer struct {
	Q, K, V, O           []float32 // [hidden][hidden]
	QB, KB, VB, OB       []float32 // [hidden]
	AttnNormW, AttnNormB []float32 // [hidden]
	Up                   []float32 // [hidden][intermediate]
	UpB                  []float32 // [intermediate]
	Down                 []float32 // [intermediate][hidden]
	DownB                []float32 // [hidden]
	OutNormW, OutNormB   []float32 // [hidden]
}

// Encoder is a BERT-style encoder with its weights: word, position and
// token-type embeddings summed and layer-normalised, then NumLayers
// post-norm layers of bidirectional self-attention and a GELU MLP.
type Encoder struct {
	Config                 EncoderConfig
	Word                   []float32 // [vocab][hidden]
	Position               []float32 // [max_positions][hidden]
	Type                   []float32 // [type_vocab][hidden]
	EmbedNormW, EmbedNormB []float32 // [hidden]
	Layers                 []EncoderLayer
}

// NewEncoder returns an encoder of shape c with weights drawn from a
// splitmix64 stream seeded with seed, in the order of the struct fields.
// Embeddings are uniform in [-1, 1); projections uniform in
// [-1, 1)/sqrt(fan-in); biases in [-0.1, 0.1); norm weights 1 ± 0.1.
func NewEncoder(c EncoderConfig, seed uint64) *Encoder {
	if c.HiddenSize%c.NumHeads != 0 {
		panic(fmt.Sprintf("modelgen: bad encoder config %+v: hidden must be a multiple of heads", c))
	}
	r := &splitMix64{state: seed}
	fill := func(n int, scale, offset float32) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = offset + r.uniform()*scale
		}
		return w
	}
	mat := func(in, out int) []float32 { return fill(in*out, 1/float32(math.Sqrt(float64(in))), 0) }
	h, f := c.HiddenSize, c.IntermediateSize
	e := &Encoder{
		Config:     c,
		Word:       fill(c.VocabSize*h, 1, 0),
		Position:   fill(c.MaxPositions*h, 1, 0),
		Type:       fill(c.TypeVocabSize*h, 1, 0),
		EmbedNormW: fill(h, 0.1, 1),
		EmbedNormB: fill(h, 0.1, 0),
	}
	for range c.NumLayers {
		var l EncoderLayer
		l.Q, l.QB = mat(h, h), fill(h, 0.1, 0)
		l.K, l.KB = mat(h, h), fill(h, 0.1, 0)
		l.V, l.VB = mat(h, h), fill(h, 0.1, 0)
		l.O, l.OB = mat(h, h), fill(h, 0.1, 0)
		l.AttnNormW, l.AttnNormB = fill(h, 0.1, 1), fill(h, 0.1, 0)
		l.Up, l.UpB = mat(h, f), fill(f, 0.1, 0)
		l.Down, l.DownB = mat(f, h), fill(h, 0.1, 0)
		l.OutNormW, l.OutNormB = fill(h, 0.1, 1), fill(h, 0.1, 0)
		e.Layers = append(e.Layers, l)
	}
	return e
}

// Model returns the encoder as an ONNX model with Hugging Face Optimum's
// feature-extraction I/O: input_ids, attention_mask (1 attend, 0 padding)
// and token_type_ids, all INT64 [batch_size, sequence_length]; output
// last_hidden_state FP32 [batch_size, sequence_length, hidden]. Padded
// positions are masked as keys, so a row's unpadded outputs do not depend
// on how far it is padded. Only standard opset-17 operators are used
// (LayerNormalization, Erf for GELU).
func (e *Encoder) Model(name string) *onnxpb.ModelProto {
	c := e.Config
	f32, i64 := onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT64
	batch, seq := Sym("batch_size"), Sym("sequence_length")
	h, ff, heads := c.HiddenSize, c.IntermediateSize, c.NumHeads
	headDim := h / heads

	g := NewGraph(name)
	ids := g.Input("input_ids", i64, batch, seq)
	mask := g.Input("attention_mask", i64, batch, seq)
	types := g.Input("token_type_ids", i64, batch, seq)
	g.Output("last_hidden_state", f32, batch, seq, Fixed(int64(h)))

	ints := func(name string, v ...int64) string { return g.Initializer(Tensor(name, []int64{int64(len(v))}, v)) }
	scalarInt := func(name string, v int64) string { return g.Initializer(Tensor(name, nil, []int64{v})) }
	scalar := func(name string, v float32) string { return g.Initializer(Tensor(name, nil, []float32{v})) }
	vec := func(name string, v []float32) string { return g.Initializer(Tensor(name, []int64{int64(len(v))}, v)) }
	zero, one := scalarInt("zero", 0), scalarInt("one", 1)

	seqLen := g.Op("Gather", "seq_len", []string{g.Op("Shape", "input_ids_shape", []string{ids}), one}, AttrInt("axis", 0))
	positions := g.Op("Range", "positions", []string{zero, seqLen, one})
	x := g.Op("Add", "", []string{
		g.Op("Gather", "word_embeddings", []string{g.Initializer(Tensor("embeddings.word_embeddings.weight", []int64{int64(c.VocabSize), int64(h)}, e.Word)), ids}, AttrInt("axis", 0)),
		g.Op("Gather", "position_embeddings", []string{g.Initializer(Tensor("embeddings.position_embeddings.weight", []int64{int64(c.MaxPositions), int64(h)}, e.Position)), positions}, AttrInt("axis", 0)),
	})
	x = g.Op("Add", "", []string{x,
		g.Op("Gather", "token_type_embeddings", []string{g.Initializer(Tensor("embeddings.token_type_embeddings.weight", []int64{int64(c.TypeVocabSize), int64(h)}, e.Type)), types}, AttrInt("axis", 0)),
	})
	layerNorm := func(p, x string, w, b []float32) string {
		return g.Op("LayerNormalization", p, []string{x, vec(p+".weight", w), vec(p+".bias", b)}, AttrInt("axis", -1), AttrFloat("epsilon", c.LayerNormEps))
	}
	linear := func(p, x string, w, b []float32, in, out int) string {
		y := g.Op("MatMul", "", []string{x, g.Initializer(Tensor(p+".weight", []int64{int64(in), int64(out)}, w))})
		return g.Op("Add", p, []string{y, vec(p+".bias", b)})
	}
	x = layerNorm("embeddings.LayerNorm", x, e.EmbedNormW, e.EmbedNormB)

	// Keys at padded positions are masked for every query: [batch, 1, 1, seq].
	attend := g.Op("Unsqueeze", "attend", []string{g.Op("Equal", "", []string{mask, one}), ints("axes_1_2", 1, 2)})
	masked := scalar("masked_score", maskedScore)
	headsShape := ints("heads_shape", 0, 0, int64(heads), int64(headDim))
	hiddenShape := ints("hidden_shape", 0, 0, int64(h))
	scale := scalar("attn_scale", float32(1/math.Sqrt(float64(headDim))))
	toHeads := AttrInts("perm", 0, 2, 1, 3)
	half, sqrt2 := scalar("half", 0.5), scalar("sqrt2", float32(math.Sqrt2))
	for i, l := range e.Layers {
		p := fmt.Sprintf("encoder.layer.%d", i)
		split := func(name, x string) string {
			return g.Op("Transpose", name, []string{g.Op("Reshape", "", []string{x, headsShape})}, toHeads)
		}
		q := split(p+".q_heads", linear(p+".attention.self.query", x, l.Q, l.QB, h, h))
		k := split(p+".k_heads", linear(p+".attention.self.key", x, l.K, l.KB, h, h))
		v := split(p+".v_heads", linear(p+".attention.self.value", x, l.V, l.VB, h, h))
		kT := g.Op("Transpose", "", []string{k}, AttrInts("perm", 0, 1, 3, 2))
		scores := g.Op("Mul", p+".scores", []string{g.Op("MatMul", "", []string{q, kT}), scale})
		scores = g.Op("Where", p+".masked_scores", []string{attend, scores, masked})
		probs := g.Op("Softmax", p+".probs", []string{scores}, AttrInt("axis", -1))
		ctx := g.Op("Transpose", "", []string{g.Op("MatMul", p+".context", []string{probs, v})}, toHeads)
		ctx = g.Op("Reshape", "", []string{ctx, hiddenShape})
		attn := linear(p+".attention.output.dense", ctx, l.O, l.OB, h, h)
		x = layerNorm(p+".attention.output.LayerNorm", g.Op("Add", "", []string{x, attn}), l.AttnNormW, l.AttnNormB)

		up := linear(p+".intermediate.dense", x, l.Up, l.UpB, h, ff)
		// GELU, erf form: x * 0.5 * (1 + erf(x / sqrt(2))).
		erf := g.Op("Erf", "", []string{g.Op("Div", "", []string{up, sqrt2})})
		act := g.Op("Mul", p+".intermediate.act", []string{g.Op("Mul", "", []string{up, half}), g.Op("Add", "", []string{erf, g.Initializer(Tensor(p+".one_f", nil, []float32{1}))})})
		down := linear(p+".output.dense", act, l.Down, l.DownB, ff, h)
		out := "last_hidden_state"
		if i < len(e.Layers)-1 {
			out = p + ".output"
		}
		x = g.Op("LayerNormalization", out, []string{g.Op("Add", "", []string{x, down}), vec(p+".output.LayerNorm.weight", l.OutNormW), vec(p+".output.LayerNorm.bias", l.OutNormB)},
			AttrInt("axis", -1), AttrFloat("epsilon", c.LayerNormEps))
	}
	return g.Model(fmt.Sprintf("BERT-style encoder: %d layers, hidden %d, %d heads, intermediate %d, vocab %d; random weights",
		c.NumLayers, h, heads, ff, c.VocabSize))
}

// Forward computes last_hidden_state in pure Go for rows of equal length:
// ids, mask and types are [rows][seq]; the result is [rows][seq][hidden]
// flattened. It is the reference the ONNX graph is checked against.
func (e *Encoder) Forward(ids, mask, types [][]int64) []float32 {
	c := e.Config
	h, heads := c.HiddenSize, c.NumHeads
	hd := h / heads
	var out []float32
	for r := range ids {
		n := len(ids[r])
		x := make([][]float64, n)
		for j := range n {
			x[j] = make([]float64, h)
			for d := range h {
				x[j][d] = float64(e.Word[int(ids[r][j])*h+d]) + float64(e.Position[j*h+d]) + float64(e.Type[int(types[r][j])*h+d])
			}
			x[j] = layerNorm64(x[j], e.EmbedNormW, e.EmbedNormB, c.LayerNormEps)
		}
		for _, l := range e.Layers {
			q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
			for j := range n {
				q[j], k[j], v[j] = affine(x[j], l.Q, l.QB), affine(x[j], l.K, l.KB), affine(x[j], l.V, l.VB)
			}
			ctx := make([][]float64, n)
			for j := range n {
				ctx[j] = make([]float64, h)
				for hh := range heads {
					scores := make([]float64, n)
					top := math.Inf(-1)
					for t := range n {
						if mask[r][t] != 1 {
							scores[t] = maskedScore
						} else {
							s := 0.0
							for d := hh * hd; d < (hh+1)*hd; d++ {
								s += q[j][d] * k[t][d]
							}
							scores[t] = s / math.Sqrt(float64(hd))
						}
						top = max(top, scores[t])
					}
					sum := 0.0
					for t := range scores {
						scores[t] = math.Exp(scores[t] - top)
						sum += scores[t]
					}
					for t := range n {
						p := scores[t] / sum
						for d := hh * hd; d < (hh+1)*hd; d++ {
							ctx[j][d] += p * v[t][d]
						}
					}
				}
			}
			for j := range n {
				a := affine(ctx[j], l.O, l.OB)
				for d := range h {
					a[d] += x[j][d]
				}
				x[j] = layerNorm64(a, l.AttnNormW, l.AttnNormB, c.LayerNormEps)
				up := affine(x[j], l.Up, l.UpB)
				for d := range up {
					up[d] = up[d] * 0.5 * (1 + math.Erf(up[d]/math.Sqrt2))
				}
				down := affine(up, l.Down, l.DownB)
				for d := range h {
					down[d] += x[j][d]
				}
				x[j] = layerNorm64(down, l.OutNormW, l.OutNormB, c.LayerNormEps)
			}
		}
		for j := range n {
			for d := range h {
				out = append(out, float32(x[j][d]))
			}
		}
	}
	return out
}

// affine is x·W + b with W row-major [len(x)][len(b)].
func affine(x []float64, w, b []float32) []float64 {
	out := make([]float64, len(b))
	for o := range out {
		out[o] = float64(b[o])
	}
	for i, xi := range x {
		row := w[i*len(b) : (i+1)*len(b)]
		for o, wv := range row {
			out[o] += xi * float64(wv)
		}
	}
	return out
}

func layerNorm64(x []float64, w, b []float32, eps float32) []float64 {
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	varSum := 0.0
	for _, v := range x {
		varSum += (v - mean) * (v - mean)
	}
	inv := 1 / math.Sqrt(varSum/float64(len(x))+float64(eps))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v-mean)*inv*float64(w[i]) + float64(b[i])
	}
	return out
}
