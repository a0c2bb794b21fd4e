package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// Version names the quantizer's output: a cache keyed by it is rebuilt
// when a new version writes different graphs or weights.
const Version = "1"

// DefaultMinElements is the smallest weight quantized unless told
// otherwise: below it the run-time quantization of the activations costs
// about what the integer product saves.
const DefaultMinElements = 4096

// Form is the operator form a quantized MatMul or Gemm takes.
type Form int

// The forms ONNX Runtime's CPU build runs; BENCHMARKS.md compares them.
const (
	// DynamicQuantizeMatMul is com.microsoft DynamicQuantizeMatMul: one
	// node that quantizes the activations, multiplies and rescales. The
	// default: the fastest on the machines measured.
	DynamicQuantizeMatMul Form = iota
	// MatMulInteger is the standard ONNX form: DynamicQuantizeLinear,
	// MatMulInteger, Cast and a Mul by the two scales (opset 11).
	MatMulInteger
	// MatMulIntegerToFloat is DynamicQuantizeLinear then com.microsoft
	// MatMulIntegerToFloat, which rescales in the product's epilogue.
	MatMulIntegerToFloat
)

func (f Form) String() string {
	switch f {
	case DynamicQuantizeMatMul:
		return "DynamicQuantizeMatMul"
	case MatMulInteger:
		return "DynamicQuantizeLinear+MatMulInteger"
	case MatMulIntegerToFloat:
		return "DynamicQuantizeLinear+MatMulIntegerToFloat"
	}
	return fmt.Sprintf("Form(%d)", int(f))
}

// Options control what Model rewrites.
type Options struct {
	// PerChannel gives each output column of a weight its own scale; false
	// uses one scale per weight. Per channel keeps more precision and
	// costs nothing at run time.
	PerChannel bool
	// Exclude names nodes that stay FP32: a node's name, or for a node
	// without a name its first output.
	Exclude []string
	// MinElements is the smallest weight (in elements) quantized; smaller
	// ones stay FP32. 0 quantizes every weight.
	MinElements int
	// Form is the operator form of quantized MatMul and Gemm nodes.
	Form Form
	// FullRange stores weights in [-127, 127] instead of [-63, 63]. Only
	// for CPUs with VNNI (avx512_vnni, avx_vnni): without it ONNX
	// Runtime's u8s8 kernel adds pairs of products in 16 bits, which
	// saturate with full-range weights and cost accuracy (cosine 0.97
	// instead of 0.999 on the test MLPs). The reduced range runs on every
	// x86-64 CPU, so a quantized file can be copied anywhere.
	FullRange bool
}

// msDomain is ONNX Runtime's contrib operator domain.
const msDomain = "com.microsoft"

// Model returns a copy of m with every MatMul and Gemm whose weight is a
// constant FP32 initializer of at least opts.MinElements elements, and
// every com.microsoft Attention whose weights are, rewritten to dynamic
// INT8: weights stored as symmetric int8 with FP32 scales, activations
// quantized at run time. Nodes in subgraphs are left as they are. The
// graph's inputs and outputs do not change. m must hold its tensor data
// (see Load); m itself is not changed.
func Model(m *onnxpb.ModelProto, opts Options) (*onnxpb.ModelProto, *Summary, error) {
	if m.GetGraph() == nil {
		return nil, nil, fmt.Errorf("the model has no graph")
	}
	m = proto.Clone(m).(*onnxpb.ModelProto)
	r := newRewriter(m, opts)
	if err := r.run(); err != nil {
		return nil, nil, err
	}
	return m, r.sum, nil
}

type rewriter struct {
	m      *onnxpb.ModelProto
	g      *onnxpb.GraphProto
	opts   Options
	sum    *Summary
	consts map[string]*onnxpb.TensorProto
	names  map[string]bool // every value and node name in use
	// quantized caches the initializers made for a weight, so a weight
	// shared by several nodes is stored once.
	quantized map[string]qweight
	added     []*onnxpb.TensorProto
	// uses counts the nodes (in subgraphs too) and graph outputs reading
	// each value; consumer is the top-level node reading it, if one.
	uses     map[string]int
	consumer map[string]*onnxpb.NodeProto
	dropped  map[*onnxpb.NodeProto]bool // bias Adds folded into a product
	usesMS   bool
	opset    int64
}

// qweight names the initializers of a quantized weight.
type qweight struct{ values, scale string }

func newRewriter(m *onnxpb.ModelProto, opts Options) *rewriter {
	r := &rewriter{
		m: m, g: m.GetGraph(), opts: opts, sum: &Summary{Form: opts.Form, PerChannel: opts.PerChannel, FullRange: opts.FullRange},
		consts: map[string]*onnxpb.TensorProto{}, names: map[string]bool{}, quantized: map[string]qweight{},
	}
	for _, t := range r.g.GetInitializer() {
		r.consts[t.GetName()] = t
	}
	// An initializer that is also a graph input is a default the caller
	// may override, so it is no constant.
	for _, in := range r.g.GetInput() {
		delete(r.consts, in.GetName())
	}
	walkNames(r.g, r.names)
	r.uses, r.consumer, r.dropped = map[string]int{}, map[string]*onnxpb.NodeProto{}, map[*onnxpb.NodeProto]bool{}
	countUses(r.g, r.uses)
	for _, o := range r.g.GetOutput() {
		r.uses[o.GetName()]++
	}
	for _, n := range r.g.GetNode() {
		for _, in := range n.GetInput() {
			r.consumer[in] = n
		}
	}
	for _, o := range m.GetOpsetImport() {
		switch o.GetDomain() {
		case "", "ai.onnx":
			r.opset = o.GetVersion()
		case msDomain:
			r.usesMS = true
		}
	}
	return r
}

// walkNames records every value and node name of g and its subgraphs.
func walkNames(g *onnxpb.GraphProto, names map[string]bool) {
	for _, v := range g.GetInput() {
		names[v.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		names[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		names[n.GetName()] = true
		for _, s := range n.GetOutput() {
			names[s] = true
		}
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				walkNames(a.GetG(), names)
			}
			for _, sg := range a.GetGraphs() {
				walkNames(sg, names)
			}
		}
	}
}

// countUses counts the node inputs of g and its subgraphs by value.
func countUses(g *onnxpb.GraphProto, uses map[string]int) {
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			uses[in]++
		}
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				countUses(a.GetG(), uses)
			}
			for _, sg := range a.GetGraphs() {
				countUses(sg, uses)
			}
		}
	}
}

// biasAdd returns the Add that is the only reader of out and adds a
// constant FP32 vector of cols elements to it, and that vector's name, so
// the product can take it as its bias; or nil.
func (r *rewriter) biasAdd(out string, cols int) (*onnxpb.NodeProto, string) {
	add := r.consumer[out]
	if r.uses[out] != 1 || add == nil || add.GetOpType() != "Add" || (add.GetDomain() != "" && add.GetDomain() != "ai.onnx") || len(add.GetInput()) != 2 || len(add.GetOutput()) != 1 {
		return nil, ""
	}
	other := add.GetInput()[0]
	if other == out {
		other = add.GetInput()[1]
	}
	t := r.consts[other]
	if other == out || t == nil || t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) || len(t.GetDims()) != 1 || t.GetDims()[0] != int64(cols) {
		return nil, ""
	}
	return add, other
}

// unique returns name, or name with a numbered suffix if it is taken, and
// marks it taken.
func (r *rewriter) unique(name string) string {
	n := name
	for i := 1; r.names[n]; i++ {
		n = fmt.Sprintf("%s_%d", name, i)
	}
	r.names[n] = true
	return n
}

func (r *rewriter) run() error {
	exclude := map[string]bool{}
	for _, e := range r.opts.Exclude {
		exclude[e] = true
	}
	var nodes []*onnxpb.NodeProto
	for _, n := range r.g.GetNode() {
		if r.dropped[n] {
			continue
		}
		op := n.GetOpType()
		quantizable := (n.GetDomain() == "" || n.GetDomain() == "ai.onnx") && (op == "MatMul" || op == "Gemm") ||
			n.GetDomain() == msDomain && op == "Attention"
		if !quantizable {
			nodes = append(nodes, n)
			continue
		}
		id := nodeID(n)
		if exclude[id] {
			r.sum.skip(n, "listed in exclude")
			nodes = append(nodes, n)
			continue
		}
		var repl []*onnxpb.NodeProto
		var reason string
		switch op {
		case "MatMul":
			repl, reason = r.matMul(n)
		case "Gemm":
			repl, reason = r.gemm(n)
		case "Attention":
			repl, reason = r.attention(n)
		}
		if repl == nil {
			r.sum.skip(n, reason)
			nodes = append(nodes, n)
			continue
		}
		nodes = append(nodes, repl...)
	}
	r.g.Node = nodes
	r.dropUnused()
	r.g.Initializer = append(r.g.Initializer, r.added...)
	if r.sum.usedMS && !r.usesMS {
		r.m.OpsetImport = append(r.m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(msDomain), Version: proto.Int64(1)})
	}
	return nil
}

// nodeID is the name Exclude matches: the node's name, else its first
// output.
func nodeID(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOutput()[0]
	}
	return ""
}

// dropUnused removes the FP32 initializers no node or output uses any more.
func (r *rewriter) dropUnused() {
	used := map[string]bool{}
	for _, o := range r.g.GetOutput() {
		used[o.GetName()] = true
	}
	var walk func(g *onnxpb.GraphProto)
	walk = func(g *onnxpb.GraphProto) {
		for _, n := range g.GetNode() {
			for _, in := range n.GetInput() {
				used[in] = true
			}
			for _, a := range n.GetAttribute() {
				if a.GetG() != nil {
					walk(a.GetG())
				}
				for _, sg := range a.GetGraphs() {
					walk(sg)
				}
			}
		}
	}
	walk(r.g)
	r.g.Initializer = slices.DeleteFunc(r.g.Initializer, func(t *onnxpb.TensorProto) bool {
		_, rewritten := r.sum.weights[t.GetName()]
		return rewritten && !used[t.GetName()]
	})
}

// weight returns the FP32 values of the constant initializer name as a
// row-major [k][n] matrix, transposed if transpose is set, or why it
// cannot be quantized.
func (r *rewriter) weight(name string, transpose bool) ([]float32, int, int, string) {
	t := r.consts[name]
	if t == nil {
		return nil, 0, 0, fmt.Sprintf("weight %q is not a constant initializer", name)
	}
	if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return nil, 0, 0, fmt.Sprintf("weight %q is %s, not FLOAT", name, onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	dims := t.GetDims()
	if len(dims) != 2 {
		return nil, 0, 0, fmt.Sprintf("weight %q has shape %v, not 2-D", name, dims)
	}
	n, ok := elements(dims)
	switch {
	case !ok:
		return nil, 0, 0, fmt.Sprintf("weight %q has the invalid shape %v", name, dims)
	case n == 0:
		return nil, 0, 0, fmt.Sprintf("weight %q is empty", name)
	case n < int64(r.opts.MinElements):
		return nil, 0, 0, fmt.Sprintf("weight %q has %d elements, fewer than min_elements %d", name, n, r.opts.MinElements)
	}
	vals, err := floats(t, n)
	if err != nil {
		return nil, 0, 0, err.Error()
	}
	rows, cols := int(dims[0]), int(dims[1])
	if transpose {
		tv := make([]float32, len(vals))
		for i := range rows {
			for j := range cols {
				tv[j*rows+i] = vals[i*cols+j]
			}
		}
		vals, rows, cols = tv, cols, rows
	}
	return vals, rows, cols, ""
}

// floats returns the n values of an FP32 tensor.
func floats(t *onnxpb.TensorProto, n int64) ([]float32, error) {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("weight %q is still in external data", t.GetName())
	}
	if raw := t.GetRawData(); raw != nil || len(t.GetFloatData()) == 0 {
		if int64(len(raw)) != 4*n {
			return nil, fmt.Errorf("weight %q has %d bytes of data for %d elements", t.GetName(), len(raw), n)
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return v, nil
	}
	if int64(len(t.GetFloatData())) != n {
		return nil, fmt.Errorf("weight %q has %d values for %d elements", t.GetName(), len(t.GetFloatData()), n)
	}
	return slices.Clone(t.GetFloatData()), nil
}

// quantizeWeight stores the int8 form of the [k][n] matrix w, with scales
// multiplied by gain, and returns the initializers' names. key tells
// apart the forms of one source weight (transposed, scaled).
func (r *rewriter) quantizeWeight(key, src string, w []float32, k, n int, gain float32) qweight {
	if q, ok := r.quantized[key]; ok {
		return q
	}
	limit := 63
	if r.opts.FullRange {
		limit = 127
	}
	q8, scales := symmetric(w, k, n, r.opts.PerChannel, limit)
	for i := range scales {
		scales[i] *= gain
	}
	dims := []int64{int64(len(scales))}
	if !r.opts.PerChannel {
		dims = nil
	}
	q := qweight{values: r.unique(src + "_quantized"), scale: r.unique(src + "_scale")}
	raw := make([]byte, len(q8))
	for i, v := range q8 {
		raw[i] = byte(v)
	}
	r.added = append(r.added,
		&onnxpb.TensorProto{Name: proto.String(q.values), Dims: []int64{int64(k), int64(n)}, DataType: proto.Int32(int32(onnxpb.TensorProto_INT8)), RawData: raw},
		floatTensor(q.scale, dims, scales))
	r.quantized[key] = q
	r.sum.weight(src, int64(4*k*n), int64(len(raw)+4*len(scales)))
	return q
}

// symmetric quantizes the [k][n] matrix w to int8 in [-limit, limit] with
// zero point 0: one scale per column when perChannel, else one for all.
func symmetric(w []float32, k, n int, perChannel bool, limit int) ([]int8, []float32) {
	amax := make([]float32, n)
	for i := range k {
		for j, v := range w[i*n : (i+1)*n] {
			amax[j] = max(amax[j], float32(math.Abs(float64(v))))
		}
	}
	if !perChannel {
		all := slices.Max(amax)
		amax = []float32{all}
	}
	scales := make([]float32, len(amax))
	// inv maps a weight to its level in float64, so that a weight
	// halfway between two levels rounds the same whatever float32 makes
	// of its scale.
	inv := make([]float64, len(amax))
	for j, a := range amax {
		scales[j], inv[j] = a/float32(limit), float64(limit)/float64(a)
		if a == 0 || math.IsInf(float64(a), 0) || math.IsNaN(float64(a)) {
			scales[j], inv[j] = 1, 1
		}
	}
	q := make([]int8, len(w))
	for i := range k {
		for j := range n {
			s := inv[0]
			if perChannel {
				s = inv[j]
			}
			v := math.Round(float64(w[i*n+j]) * s)
			q[i*n+j] = int8(max(-float64(limit), min(float64(limit), v)))
		}
	}
	return q, scales
}

func floatTensor(name string, dims []int64, v []float32) *onnxpb.TensorProto {
	raw := make([]byte, 0, 4*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw}
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}

func attrFloat(n *onnxpb.NodeProto, name string, def float32) float32 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetF()
		}
	}
	return def
}

// input is the i'th input of n, or "" when it is absent.
func input(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

func (r *rewriter) node(op, domain, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(r.unique(name)), Input: inputs, Output: outputs, Attribute: attrs}
	if domain != "" {
		n.Domain = proto.String(domain)
		r.sum.usedMS = true
	}
	return n
}

// matMul rewrites MatMul(A, W).
func (r *rewriter) matMul(n *onnxpb.NodeProto) ([]*onnxpb.NodeProto, string) {
	if len(n.GetInput()) != 2 || len(n.GetOutput()) != 1 {
		return nil, "a MatMul takes two inputs and gives one output"
	}
	if why := r.formCheck(); why != "" {
		return nil, why
	}
	name := n.GetInput()[1]
	w, k, cols, why := r.weight(name, false)
	if why != "" {
		return nil, why
	}
	q := r.quantizeWeight(name, name, w, k, cols, 1)
	// A bias Add after the product becomes the product's bias: the form
	// ONNX Runtime's own fusion gives the MatMulInteger form.
	out, bias := n.GetOutput()[0], ""
	add, b := r.biasAdd(out, cols)
	if add != nil && r.opts.Form != MatMulInteger {
		out, bias = add.GetOutput()[0], b
	}
	nodes, why := r.product(n, n.GetInput()[0], q, bias, out)
	if nodes != nil {
		r.dropped[add] = bias != ""
		r.sum.rewrite(n, name, []int64{int64(k), int64(cols)})
	}
	return nodes, why
}

// gemm rewrites Gemm(A, B, C) = alpha·A·B' + beta·C with a constant B: alpha
// goes into the weight's scales, C (with beta 1) into the product's bias
// or an Add after it.
func (r *rewriter) gemm(n *onnxpb.NodeProto) ([]*onnxpb.NodeProto, string) {
	if len(n.GetInput()) < 2 || len(n.GetOutput()) != 1 {
		return nil, "a Gemm takes two or three inputs and gives one output"
	}
	if attrInt(n, "transA", 0) != 0 {
		return nil, "Gemm with transA=1 has no quantized form here"
	}
	alpha, beta := attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1)
	c := input(n, 2)
	if c != "" && beta != 1 {
		return nil, fmt.Sprintf("Gemm with beta=%g has no quantized form here", beta)
	}
	if why := r.formCheck(); why != "" {
		return nil, why
	}
	name := n.GetInput()[1]
	trans := attrInt(n, "transB", 0) != 0
	w, k, cols, why := r.weight(name, trans)
	if why != "" {
		return nil, why
	}
	q := r.quantizeWeight(fmt.Sprintf("%s/%t/%g", name, trans, alpha), name, w, k, cols, alpha)
	bias := ""
	if t := r.consts[c]; t != nil && len(t.GetDims()) == 1 && t.GetDims()[0] == int64(cols) &&
		t.GetDataType() == int32(onnxpb.TensorProto_FLOAT) && r.opts.Form != MatMulInteger {
		bias = c
	}
	out := n.GetOutput()[0]
	prod := out
	if c != "" && bias == "" {
		prod = r.unique(out + "_product")
	}
	nodes, why := r.product(n, n.GetInput()[0], q, bias, prod)
	if nodes == nil {
		return nil, why
	}
	if prod != out {
		nodes = append(nodes, r.node("Add", "", nodeID(n)+"_bias", []string{prod, c}, []string{out}))
	}
	r.sum.rewrite(n, name, []int64{int64(k), int64(cols)})
	return nodes, ""
}

// formCheck says why opts.Form cannot be used in this model, or "".
func (r *rewriter) formCheck() string {
	if r.opts.Form != DynamicQuantizeMatMul && r.opset < 11 {
		return fmt.Sprintf("the %s form needs opset 11 or later; the model imports opset %d", r.opts.Form, r.opset)
	}
	return ""
}

// product returns the nodes computing out = a·q (+ bias) in the form
// opts.Form asks for.
func (r *rewriter) product(n *onnxpb.NodeProto, a string, q qweight, bias, out string) ([]*onnxpb.NodeProto, string) {
	id := nodeID(n)
	if r.opts.Form == DynamicQuantizeMatMul {
		in := []string{a, q.values, q.scale, ""}
		if bias != "" {
			in = append(in, bias)
		} else {
			in = in[:3]
		}
		return []*onnxpb.NodeProto{r.node("DynamicQuantizeMatMul", msDomain, id+"_quant", in, []string{out})}, ""
	}
	aq, as, az := r.unique(out+"_input_quantized"), r.unique(out+"_input_scale"), r.unique(out+"_input_zero_point")
	quant := r.node("DynamicQuantizeLinear", "", id+"_input_quant", []string{a}, []string{aq, as, az})
	if r.opts.Form == MatMulIntegerToFloat {
		in := []string{aq, q.values, as, q.scale, az}
		if bias != "" {
			in = append(in, "", bias)
		}
		return []*onnxpb.NodeProto{quant, r.node("MatMulIntegerToFloat", msDomain, id+"_quant", in, []string{out})}, ""
	}
	acc, accF, scale := r.unique(out+"_int32"), r.unique(out+"_float"), r.unique(out+"_scale")
	return []*onnxpb.NodeProto{
		quant,
		r.node("MatMulInteger", "", id+"_quant", []string{aq, q.values, az}, []string{acc}),
		r.node("Cast", "", id+"_cast", []string{acc}, []string{accF}, &onnxpb.AttributeProto{Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnxpb.TensorProto_FLOAT))}),
		r.node("Mul", "", id+"_scales", []string{as, q.scale}, []string{scale}),
		r.node("Mul", "", id+"_rescale", []string{accF, scale}, []string{out}),
	}, ""
}

// attention rewrites com.microsoft Attention(input, weights, bias,
// mask_index, past) to DynamicQuantizeLinear and QAttention, which takes
// the same inputs quantized and the same attributes.
func (r *rewriter) attention(n *onnxpb.NodeProto) ([]*onnxpb.NodeProto, string) {
	for i := 5; i < len(n.GetInput()); i++ {
		if n.GetInput()[i] != "" {
			return nil, fmt.Sprintf("Attention input %d (attention_bias or past_sequence_length) has no QAttention counterpart", i)
		}
	}
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "num_heads", "unidirectional", "mask_filter_value":
		default:
			return nil, fmt.Sprintf("Attention attribute %s has no QAttention counterpart", a.GetName())
		}
	}
	if input(n, 2) == "" {
		return nil, "QAttention needs the Attention's bias input"
	}
	if r.opset < 11 {
		return nil, fmt.Sprintf("QAttention's input quantization needs opset 11 or later; the model imports opset %d", r.opset)
	}
	name := n.GetInput()[1]
	w, k, cols, why := r.weight(name, false)
	if why != "" {
		return nil, why
	}
	q := r.quantizeWeight(name, name, w, k, cols, 1)
	id := nodeID(n)
	a := n.GetInput()[0]
	aq, as, az := r.unique(id+"_input_quantized"), r.unique(id+"_input_scale"), r.unique(id+"_input_zero_point")
	in := []string{aq, q.values, input(n, 2), as, q.scale, input(n, 3), az, "", input(n, 4)}
	for len(in) > 0 && in[len(in)-1] == "" {
		in = in[:len(in)-1]
	}
	var attrs []*onnxpb.AttributeProto
	for _, at := range n.GetAttribute() {
		if at.GetName() != "mask_filter_value" {
			attrs = append(attrs, at)
		}
	}
	r.sum.rewrite(n, name, []int64{int64(k), int64(cols)})
	return []*onnxpb.NodeProto{
		r.node("DynamicQuantizeLinear", "", id+"_input_quant", []string{a}, []string{aq, as, az}),
		r.node("QAttention", msDomain, id+"_quant", in, slices.Clone(n.GetOutput()), attrs...),
	}, ""
}
