package quantize

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aiassist/aiassist/engine/internal/testpaths"
	"github.com/aiassist/aiassist/engine/modelgen"
	"github.com/aiassist/aiassist/engine/onnxpb"
)

var allForms = []Form{DynamicQuantizeMatMul, MatMulIntegerToFloat, MatMulInteger}

// rowCosines checks that each of rows rows of got has cosine >= min to
// the same row of want.
func rowCosines(t *testing.T, want, got []float32, rows int, min float64) {
	t.Helper()
	cols := len(want) / rows
	worst := 1.0
	for r := range rows {
		c := cosine(want[r*cols:(r+1)*cols], got[r*cols:(r+1)*cols])
		worst = math.Min(worst, c)
		if c < min || math.IsNaN(c) {
			t.Errorf("row %d: cosine %.5f to FP32, want >= %v", r, c, min)
		}
	}
	t.Logf("worst row cosine %.5f", worst)
}

// checkMLP quantizes the FP32 model at fp32 in every form and both scale
// granularities and compares rows rows of output, with input shape
// inShape and output shape outShape.
func checkMLP(t *testing.T, fp32 string, inShape, outShape []int64, rewritten int) {
	t.Helper()
	dir := filepath.Dir(fp32)
	in := int(inShape[len(inShape)-1])
	rows := 1
	for _, d := range inShape[:len(inShape)-1] {
		rows *= int(d)
	}
	x := testInput(rows, in, 3)
	want := runFloat(t, session(t, fp32, []string{"input"}, []string{"output"}, 1), x, inShape, outShape)
	for _, form := range allForms {
		for _, perChannel := range []bool{true, false} {
			if !perChannel && form != DynamicQuantizeMatMul {
				continue
			}
			name := form.String()
			if !perChannel {
				name += "/per-tensor"
			}
			t.Run(name, func(t *testing.T) {
				out, sum := quantizeFile(t, fp32, dir, strings.ReplaceAll(name, "/", "-")+".onnx", Options{PerChannel: perChannel, Form: form})
				if len(sum.Rewritten) != rewritten || len(sum.Skipped) != 0 {
					t.Fatalf("summary:\n%s\nwant %d nodes rewritten, none skipped", sum, rewritten)
				}
				// int8 weights and FP32 scales: about a quarter of the bytes.
				if r := float64(sum.WeightBytesAfter) / float64(sum.WeightBytesBefore); r > 0.26 {
					t.Errorf("weights %d -> %d bytes, want about 4x smaller", sum.WeightBytesBefore, sum.WeightBytesAfter)
				}
				got := runFloat(t, session(t, out, []string{"input"}, []string{"output"}, 1), x, inShape, outShape)
				rowCosines(t, want, got, rows, 0.99)
			})
		}
	}
}

func TestMLP(t *testing.T) {
	dir := t.TempDir()
	mlp := modelgen.NewMLP([]int{256, 512, 512, 64}, 11)
	fp32 := writeModel(t, dir, "mlp.onnx", mlp.Model(modelgen.MLPOptions{}))
	checkMLP(t, fp32, []int64{32, 256}, []int64{32, 64}, 3)
}

// TestGemm covers the layout of torch.onnx's nn.Linear (Gemm with
// transB=1 and a bias), as BERT-style classifier heads export, and a Gemm
// with alpha and no bias.
func TestGemm(t *testing.T) {
	dir := t.TempDir()
	mlp := modelgen.NewMLP([]int{256, 512, 128}, 12)
	g := modelgen.NewGraph("gemm")
	x := g.Input("input", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch"), modelgen.Fixed(256))
	g.Output("output", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch"), modelgen.Fixed(128))
	// Layer 0 as [out][in] with transB=1 and bias C.
	w0 := make([]float32, 256*512)
	for i := range 256 {
		for j := range 512 {
			w0[j*256+i] = mlp.Weights[0][i*512+j]
		}
	}
	h := g.Op("Gemm", "hidden", []string{x, g.Initializer(modelgen.Tensor("fc0.weight", []int64{512, 256}, w0)), g.Initializer(modelgen.Tensor("fc0.bias", []int64{512}, mlp.Biases[0]))}, modelgen.AttrInt("transB", 1))
	h = g.Op("Relu", "hidden_relu", []string{h})
	g.Op("Gemm", "output", []string{h, g.Initializer(modelgen.Tensor("fc1.weight", []int64{512, 128}, mlp.Weights[1]))}, modelgen.AttrFloat("alpha", 0.5))
	fp32 := writeModel(t, dir, "gemm.onnx", g.Model(""))
	checkMLP(t, fp32, []int64{16, 256}, []int64{16, 128}, 2)
}

// TestEncoderLayout covers BERT-style projections: MatMul of a
// [batch, seq, hidden] activation by a [hidden][out] weight, then Add.
func TestEncoderLayout(t *testing.T) {
	dir := t.TempDir()
	mlp := modelgen.NewMLP([]int{128, 512, 128}, 13)
	g := modelgen.NewGraph("encoder")
	x := g.Input("input", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch"), modelgen.Sym("seq"), modelgen.Fixed(128))
	g.Output("output", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch"), modelgen.Sym("seq"), modelgen.Fixed(128))
	h := g.Op("MatMul", "", []string{x, g.Initializer(modelgen.Tensor("intermediate.dense.weight", []int64{128, 512}, mlp.Weights[0]))})
	h = g.Op("Add", "", []string{h, g.Initializer(modelgen.Tensor("intermediate.dense.bias", []int64{512}, mlp.Biases[0]))})
	h = g.Op("Relu", "", []string{h})
	h = g.Op("MatMul", "", []string{h, g.Initializer(modelgen.Tensor("output.dense.weight", []int64{512, 128}, mlp.Weights[1]))})
	g.Op("Add", "output", []string{h, g.Initializer(modelgen.Tensor("output.dense.bias", []int64{128}, mlp.Biases[1]))})
	fp32 := writeModel(t, dir, "encoder.onnx", g.Model(""))
	checkMLP(t, fp32, []int64{2, 7, 128}, []int64{2, 7, 128}, 2)
}

// TestSkips checks what stays FP32 and that the summary says why: an
// excluded node, a small weight, a weight that is a graph input, a weight
// computed by a node; a weight shared by two nodes is stored once.
func TestSkips(t *testing.T) {
	g := modelgen.NewGraph("skips")
	x := g.Input("input", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch"), modelgen.Fixed(64))
	g.Input("override", onnxpb.TensorProto_FLOAT, modelgen.Fixed(64), modelgen.Fixed(64))
	g.Output("output", onnxpb.TensorProto_FLOAT, modelgen.Sym("batch"), modelgen.Fixed(64))
	w := func(name string, n int, seed uint64) string {
		return g.Initializer(modelgen.Tensor(name, []int64{int64(n), 64}, testInput(n, 64, seed)))
	}
	shared := w("shared", 64, 1)
	a := g.Op("MatMul", "a", []string{x, shared})
	b := g.Op("MatMul", "b", []string{a, shared})
	c := g.Op("MatMul", "c", []string{b, w("excluded", 64, 2)})
	small := g.Initializer(modelgen.Tensor("small", []int64{64, 1}, testInput(64, 1, 3)))
	d := g.Op("MatMul", "d", []string{c, small})
	e := g.Op("Mul", "e", []string{c, d})
	g.Initializer(modelgen.Tensor("override", []int64{64, 64}, testInput(64, 64, 4)))
	f := g.Op("MatMul", "f", []string{e, "override"})
	computed := g.Op("Transpose", "computed", []string{w("to_transpose", 64, 5)})
	g.Op("MatMul", "output", []string{f, computed})
	m := g.Model("")

	q, sum, err := Model(m, Options{PerChannel: true, Exclude: []string{"c/MatMul"}, MinElements: 100})
	if err != nil {
		t.Fatal(err)
	}
	var rewritten []string
	for _, r := range sum.Rewritten {
		rewritten = append(rewritten, r.Node)
	}
	if !slices.Equal(rewritten, []string{"a/MatMul", "b/MatMul"}) {
		t.Errorf("rewritten %v, want a and b", rewritten)
	}
	want := map[string]string{
		"c/MatMul":      "listed in exclude",
		"d/MatMul":      `weight "small" has 64 elements, fewer than min_elements 100`,
		"f/MatMul":      `weight "override" is not a constant initializer`,
		"output/MatMul": `weight "computed" is not a constant initializer`,
	}
	for _, s := range sum.Skipped {
		if want[s.Node] != s.Reason {
			t.Errorf("skipped %s: %q, want %q", s.Node, s.Reason, want[s.Node])
		}
		delete(want, s.Node)
	}
	if len(want) != 0 {
		t.Errorf("not skipped: %v\n%s", want, sum)
	}
	var inits []string
	for _, t := range q.GetGraph().GetInitializer() {
		inits = append(inits, t.GetName())
	}
	slices.Sort(inits)
	wantInits := []string{"excluded", "override", "shared_quantized", "shared_scale", "small", "to_transpose"}
	if !slices.Equal(inits, wantInits) {
		t.Errorf("initializers %v, want %v (the shared weight once, its FP32 form gone)", inits, wantInits)
	}
	if sum.WeightBytesBefore != 64*64*4 {
		t.Errorf("WeightBytesBefore = %d, want the shared weight counted once", sum.WeightBytesBefore)
	}
	if !proto.Equal(q.GetGraph().GetInput()[0], m.GetGraph().GetInput()[0]) || len(q.GetGraph().GetOutput()) != 1 {
		t.Error("graph inputs or outputs changed")
	}
	if !slices.ContainsFunc(q.GetOpsetImport(), func(o *onnxpb.OperatorSetIdProto) bool { return o.GetDomain() == msDomain && o.GetVersion() == 1 }) {
		t.Errorf("opsets %v: com.microsoft 1 not imported", q.GetOpsetImport())
	}
	// The original is untouched.
	if len(m.GetGraph().GetNode()) != 8 || m.GetGraph().GetNode()[0].GetOpType() != "MatMul" {
		t.Error("Model changed its input")
	}
	// The result passes ONNX Runtime's loader and computes what FP32 does.
	dir := t.TempDir()
	fp32 := writeModel(t, dir, "fp32.onnx", m)
	int8 := writeModel(t, dir, "int8.onnx", q)
	names := []string{"input", "override"}
	run := func(path string) []float32 {
		return runTwo(t, session(t, path, names, []string{"output"}, 1), testInput(4, 64, 9), testInput(64, 64, 4))
	}
	rowCosines(t, run(fp32), run(int8), 4, 0.99)
}

// TestOpsetTooOld checks that the two forms built on DynamicQuantizeLinear
// skip a model whose opset predates it, and the default form does not.
func TestOpsetTooOld(t *testing.T) {
	m := modelgen.NewMLP([]int{64, 64}, 1).Model(modelgen.MLPOptions{})
	m.OpsetImport[0].Version = proto.Int64(10)
	_, sum, err := Model(m, Options{Form: MatMulInteger})
	if err != nil || len(sum.Rewritten) != 0 || len(sum.Skipped) != 1 || !strings.Contains(sum.Skipped[0].Reason, "needs opset 11") {
		t.Errorf("MatMulInteger on opset 10: %v\n%s", err, sum)
	}
	_, sum, err = Model(m, Options{})
	if err != nil || len(sum.Rewritten) != 1 {
		t.Errorf("DynamicQuantizeMatMul on opset 10: %v\n%s", err, sum)
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	mlp := modelgen.NewMLP([]int{128, 256, 32}, 21)
	in := filepath.Join(dir, "model.onnx")
	if err := modelgen.WriteFileExternal(in, mlp.Model(modelgen.MLPOptions{}), "model.onnx_data"); err != nil {
		t.Fatal(err)
	}
	out, sum := quantizeFile(t, in, dir, "model.int8.onnx", Options{PerChannel: true})
	if len(sum.Rewritten) != 2 {
		t.Fatalf("summary:\n%s", sum)
	}
	st, _ := os.Stat(filepath.Join(dir, "model.onnx_data"))
	if sum.FileBytesBefore <= st.Size() {
		t.Errorf("FileBytesBefore = %d, want the data file's %d bytes counted", sum.FileBytesBefore, st.Size())
	}
	x := testInput(8, 128, 1)
	want := runFloat(t, session(t, in, []string{"input"}, []string{"output"}, 1), x, []int64{8, 128}, []int64{8, 32})
	got := runFloat(t, session(t, out, []string{"input"}, []string{"output"}, 1), x, []int64{8, 128}, []int64{8, 32})
	rowCosines(t, want, got, 8, 0.99)

	// Bad external data: each is an error naming the tensor.
	m, err := Load(in)
	if err != nil {
		t.Fatal(err)
	}
	if proto.Size(m) < 128*256*4 {
		t.Fatal("Load did not bring the external data in")
	}
	f := func(name, want string, edit func(e []*onnxpb.StringStringEntryProto) []*onnxpb.StringStringEntryProto) {
		t.Helper()
		b, _ := os.ReadFile(in)
		m, _ := Parse(b)
		for _, tn := range m.GetGraph().GetInitializer() {
			if tn.GetName() == "layer0.weight" {
				tn.ExternalData = edit(tn.ExternalData)
			}
		}
		p := writeModel(t, dir, name, m)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", name, err, want)
		}
	}
	set := func(key, value string) func([]*onnxpb.StringStringEntryProto) []*onnxpb.StringStringEntryProto {
		return func(e []*onnxpb.StringStringEntryProto) []*onnxpb.StringStringEntryProto {
			for _, kv := range e {
				if kv.GetKey() == key {
					kv.Value = proto.String(value)
				}
			}
			return e
		}
	}
	f("past-end.onnx", `tensor "layer0.weight": external data at offset 999999999`, set("offset", "999999999"))
	f("long.onnx", `runs past the end of model.onnx_data`, set("length", "99999999"))
	f("short.onnx", `needs 131072 bytes but its external data in model.onnx_data has 4`, set("length", "4"))
	f("negative.onnx", `offset -4 is negative`, set("offset", "-4"))
	f("nan.onnx", `external data offset "x" is not a number`, set("offset", "x"))
	f("escape.onnx", `keeps its data in "../model.onnx_data", outside the model's folder`, set("location", "../model.onnx_data"))
	f("absolute.onnx", `outside the model's folder`, set("location", "/etc/passwd"))
	f("missing.onnx", `keeps its data in gone.bin`, set("location", "gone.bin"))
	f("nolocation.onnx", `has external data but no location`, func([]*onnxpb.StringStringEntryProto) []*onnxpb.StringStringEntryProto { return nil })
}

// TestSaveExternal checks that a model too large for one protobuf is
// written with external data that Load and ONNX Runtime read back.
func TestSaveExternal(t *testing.T) {
	defer func(n int) { maxInline = n }(maxInline)
	maxInline = 1 << 10
	dir := t.TempDir()
	in := writeModel(t, dir, "fp32.onnx", modelgen.NewMLP([]int{64, 128, 8}, 3).Model(modelgen.MLPOptions{}))
	out, _ := quantizeFile(t, in, dir, "int8.onnx", Options{PerChannel: true})
	if _, err := os.Stat(out + "_data"); err != nil {
		t.Fatalf("no external data written: %v", err)
	}
	if _, err := Load(out); err != nil {
		t.Fatal(err)
	}
	x := testInput(2, 64, 1)
	want := runFloat(t, session(t, in, []string{"input"}, []string{"output"}, 1), x, []int64{2, 64}, []int64{2, 8})
	got := runFloat(t, session(t, out, []string{"input"}, []string{"output"}, 1), x, []int64{2, 64}, []int64{2, 8})
	rowCosines(t, want, got, 2, 0.99)
}

// TestGenAIGPT2 quantizes the ONNX Runtime GenAI test model, whose
// attention is com.microsoft Attention with the QKV weight and a past
// input: it becomes QAttention, and the MatMuls DynamicQuantizeMatMul.
func TestGenAIGPT2(t *testing.T) {
	src := testpaths.SharedPath(t, "models/tiny-random-gpt2-fp32/past.onnx")
	dir := t.TempDir()
	out, sum := quantizeFile(t, src, dir, "past.int8.onnx", Options{PerChannel: true})
	ops := map[string]int{}
	for _, r := range sum.Rewritten {
		ops[r.Op]++
	}
	if ops["Attention"] != 5 || ops["MatMul"] != 16 || len(sum.Skipped) != 0 {
		t.Fatalf("want 5 Attention and 16 MatMul nodes rewritten:\n%s", sum)
	}
	want := gpt2Logits(t, src)
	got := gpt2Logits(t, out)
	c := cosine(want, got)
	t.Logf("logits cosine %.5f", c)
	if c < 0.99 {
		t.Errorf("logits cosine %.5f to FP32, want >= 0.99", c)
	}
	// At the default min_elements the 32x32 projections stay FP32 and
	// the summary says why.
	_, sum = quantizeFile(t, src, dir, "past.default.onnx", Options{PerChannel: true, MinElements: DefaultMinElements})
	if len(sum.Skipped) != 10 || !strings.Contains(sum.Skipped[0].Reason, "fewer than min_elements 4096") {
		t.Errorf("default min_elements:\n%s", sum)
	}
}

// TestBiasFolded: the Add of a constant bias after a quantized MatMul
// becomes DynamicQuantizeMatMul's bias input, as ONNX Runtime's own fusion
// does for the MatMulInteger form; the graph output keeps its name.
func TestBiasFolded(t *testing.T) {
	m := modelgen.NewMLP([]int{64, 128, 128, 8}, 1).Model(modelgen.MLPOptions{})
	q, _, err := Model(m, Options{PerChannel: true})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, n := range q.GetGraph().GetNode() {
		ops = append(ops, n.GetOpType()+"->"+n.GetOutput()[0])
	}
	want := []string{"DynamicQuantizeMatMul->layer0.add", "Relu->layer0.relu", "DynamicQuantizeMatMul->layer1.add", "Relu->layer1.relu", "DynamicQuantizeMatMul->output"}
	if !slices.Equal(ops, want) {
		t.Errorf("nodes %v, want %v", ops, want)
	}
}

// TestWeightRange: weights use [-63, 63] unless FullRange, one scale per
// column with PerChannel, and a zero column gets scale 1, not a division
// by zero.
func TestWeightRange(t *testing.T) {
	w := []float32{1, 0, -2, 0, 0.5, 0} // [3][2], column 1 all zero
	f := func(perChannel bool, limit int, wantQ []int8, wantScales []float32) {
		t.Helper()
		q, s := symmetric(w, 3, 2, perChannel, limit)
		if !slices.Equal(q, wantQ) || !slices.Equal(s, wantScales) {
			t.Errorf("symmetric(perChannel %v, %d) = %v, %v; want %v, %v", perChannel, limit, q, s, wantQ, wantScales)
		}
	}
	f(true, 63, []int8{32, 0, -63, 0, 16, 0}, []float32{2.0 / 63, 1})
	f(true, 127, []int8{64, 0, -127, 0, 32, 0}, []float32{2.0 / 127, 1})
	f(false, 63, []int8{32, 0, -63, 0, 16, 0}, []float32{2.0 / 63})
}

// TestAttentionSkips: an Attention that QAttention cannot express stays
// FP32, and the summary says why.
func TestAttentionSkips(t *testing.T) {
	f := func(edit func(n *onnxpb.NodeProto), want string) {
		t.Helper()
		g := modelgen.NewGraph("attn")
		x := g.Input("x", onnxpb.TensorProto_FLOAT, modelgen.Fixed(1), modelgen.Fixed(2), modelgen.Fixed(64))
		g.Output("y", onnxpb.TensorProto_FLOAT, modelgen.Fixed(1), modelgen.Fixed(2), modelgen.Fixed(64))
		w := g.Initializer(modelgen.Tensor("w", []int64{64, 192}, testInput(64, 192, 1)))
		b := g.Initializer(modelgen.Tensor("b", []int64{192}, testInput(1, 192, 2)))
		n := g.Node("Attention", []string{x, w, b}, []string{"y"}, modelgen.AttrInt("num_heads", 4))
		n.Domain = proto.String("com.microsoft")
		edit(n)
		_, sum, err := Model(g.Model(""), Options{PerChannel: true})
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			if len(sum.Rewritten) != 1 {
				t.Errorf("not rewritten:\n%s", sum)
			}
			return
		}
		if len(sum.Skipped) != 1 || sum.Skipped[0].Reason != want {
			t.Errorf("summary:\n%s\nwant skipped: %s", sum, want)
		}
	}
	f(func(*onnxpb.NodeProto) {}, "")
	f(func(n *onnxpb.NodeProto) {
		n.Attribute = append(n.Attribute, modelgen.AttrInts("qkv_hidden_sizes", 64, 64, 64))
	},
		"Attention attribute qkv_hidden_sizes has no QAttention counterpart")
	f(func(n *onnxpb.NodeProto) { n.Input = append(n.Input, "", "", "bias") },
		"Attention input 5 (attention_bias or past_sequence_length) has no QAttention counterpart")
	f(func(n *onnxpb.NodeProto) { n.Input[2] = "" }, "QAttention needs the Attention's bias input")
}
