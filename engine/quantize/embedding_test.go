package quantize

import (
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

// checkEmbedding quantizes the encoder at fp32 (default options) and
// checks that its first output, mean-pooled over the sequence as an
// embedding model's vectors are, has cosine >= min to FP32 for each row of
// a fixed batch. Inputs are found by name: input_ids gets token ids below
// 100, attention_mask ones, token_type_ids (and any other INT64 input)
// zeros. It returns the worst cosine. The embeddings issue's encoder
// reuses it.
func checkEmbedding(t *testing.T, fp32 string, min float64) float64 {
	t.Helper()
	ins, outs, err := ort.GetInputOutputInfo(fp32)
	if err != nil {
		t.Fatal(err)
	}
	const batch, seq = 4, 12
	var names []string
	var values []ort.Value
	for _, in := range ins {
		v := make([]int64, batch*seq)
		for i := range v {
			switch in.Name {
			case "input_ids":
				v[i] = int64((i*37 + 11) % 100)
			case "attention_mask":
				v[i] = 1
			}
		}
		x, err := ort.NewTensor(ort.NewShape(batch, seq), v)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Destroy()
		names, values = append(names, in.Name), append(values, x)
	}
	pooled := func(path string) [][]float32 {
		s := session(t, path, names, []string{outs[0].Name}, 1)
		out := []ort.Value{nil}
		if err := s.Run(values, out); err != nil {
			t.Fatal(err)
		}
		defer out[0].Destroy()
		data := out[0].(*ort.Tensor[float32]).GetData()
		hidden := len(data) / (batch * seq)
		rows := make([][]float32, batch)
		for b := range batch {
			rows[b] = make([]float32, hidden)
			for s := range seq {
				for h := range hidden {
					rows[b][h] += data[(b*seq+s)*hidden+h] / seq
				}
			}
		}
		return rows
	}
	int8, sum := quantizeFile(t, fp32, t.TempDir(), "model.int8.onnx", Options{PerChannel: true, MinElements: DefaultMinElements})
	if len(sum.Rewritten) == 0 {
		t.Fatalf("nothing rewritten:\n%s", sum)
	}
	want, got := pooled(fp32), pooled(int8)
	worst := 1.0
	for b := range batch {
		c := cosine(want[b], got[b])
		worst = minFloat(worst, c)
		if c < min {
			t.Errorf("row %d: embedding cosine %.5f to FP32, want >= %v", b, c, min)
		}
	}
	t.Logf("%d nodes rewritten; worst embedding cosine %.5f", len(sum.Rewritten), worst)
	return worst
}

func minFloat(a, b float64) float64 {
	if a < b {
		return a
	}
	return b
}

// TestEmbeddingHelper runs checkEmbedding on a small BERT-shaped encoder:
// token embedding, two blocks of MatMul+Add projections with a residual,
// last_hidden_state [batch, seq, 256].
func TestEmbeddingHelper(t *testing.T) {
	const vocab, hidden, inter = 100, 256, 512
	mlp := modelgen.NewMLP([]int{hidden, inter, hidden, inter, hidden}, 31)
	g := modelgen.NewGraph("encoder")
	batch, seq := modelgen.Sym("batch"), modelgen.Sym("sequence")
	ids := g.Input("input_ids", onnxpb.TensorProto_INT64, batch, seq)
	mask := g.Input("attention_mask", onnxpb.TensorProto_INT64, batch, seq)
	g.Output("last_hidden_state", onnxpb.TensorProto_FLOAT, batch, seq, modelgen.Fixed(hidden))
	x := g.Op("Gather", "embeddings", []string{g.Initializer(modelgen.Tensor("embeddings.word_embeddings.weight", []int64{vocab, hidden}, testInput(vocab, hidden, 5))), ids})
	m := g.Op("Unsqueeze", "mask_3d", []string{g.Op("Cast", "", []string{mask}, modelgen.AttrInt("to", int64(onnxpb.TensorProto_FLOAT))), g.Initializer(modelgen.Tensor("axes", []int64{1}, []int64{-1}))})
	x = g.Op("Mul", "", []string{x, m})
	for l := 0; l < 4; l += 2 {
		p := fmt.Sprintf("encoder.layer.%d", l/2)
		h := g.Op("MatMul", "", []string{x, g.Initializer(modelgen.Tensor(p+".intermediate.weight", []int64{hidden, inter}, mlp.Weights[l]))})
		h = g.Op("Add", "", []string{h, g.Initializer(modelgen.Tensor(p+".intermediate.bias", []int64{inter}, mlp.Biases[l]))})
		h = g.Op("Relu", "", []string{h})
		h = g.Op("MatMul", "", []string{h, g.Initializer(modelgen.Tensor(p+".output.weight", []int64{inter, hidden}, mlp.Weights[l+1]))})
		h = g.Op("Add", "", []string{h, g.Initializer(modelgen.Tensor(p+".output.bias", []int64{hidden}, mlp.Biases[l+1]))})
		out := ""
		if l == 2 {
			out = "last_hidden_state"
		}
		x = g.Op("Add", out, []string{x, h})
	}
	fp32 := writeModel(t, t.TempDir(), "model.onnx", g.Model("BERT-shaped test encoder"))
	checkEmbedding(t, fp32, 0.99)
}

// TestEmbeddingEncoder: the BERT encoder engine/modelgen writes for the
// embedding kind (attention, GELU feed-forward, layer norms), at a width
// where its projections are big enough to quantize, keeps its mean-pooled
// embeddings within cosine 0.99 of FP32.
func TestEmbeddingEncoder(t *testing.T) {
	enc := modelgen.NewEncoder(modelgen.EncoderConfig{
		VocabSize: 1000, HiddenSize: 128, NumLayers: 2, NumHeads: 4, IntermediateSize: 512,
		MaxPositions: 64, TypeVocabSize: 2, LayerNormEps: 1e-12,
	}, 41)
	fp32 := writeModel(t, t.TempDir(), "model.onnx", enc.Model("encoder"))
	checkEmbedding(t, fp32, 0.99)
}
