package modelgen

import "github.com/aiassist/aiassist/engine/onnxpb"

// SpinModel returns a model whose run takes as long as its caller asks:
// input "input" FP32 [batch, 4] goes through a Loop of as many steps as
// the largest of "iterations" (INT64 [batch, 1]), each a MatMul with the
// identity, and comes back unchanged as "output". Both inputs batch along
// dimension 0, so a batch runs as long as its longest request asks. ONNX Runtime checks the terminate flag of its
// run options at every step, so a test can give a run that would take
// minutes and prove that stopping it ends it within a step.
func SpinModel() *onnxpb.ModelProto {
	body := NewGraph("spin-step")
	body.Input("step", onnxpb.TensorProto_INT64)
	cond := body.Input("cond_in", onnxpb.TensorProto_BOOL)
	v := body.Input("v_in", onnxpb.TensorProto_FLOAT, Sym("batch"), Fixed(4))
	body.Output("cond_out", onnxpb.TensorProto_BOOL)
	body.Output("v_out", onnxpb.TensorProto_FLOAT, Sym("batch"), Fixed(4))
	eye := body.Initializer(Tensor("eye", []int64{4, 4}, []float32{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}))
	body.Op("Identity", "cond_out", []string{cond})
	body.Op("MatMul", "v_out", []string{v, eye})

	g := NewGraph("spin")
	x := g.Input("input", onnxpb.TensorProto_FLOAT, Sym("batch"), Fixed(4))
	n := g.Input("iterations", onnxpb.TensorProto_INT64, Sym("batch"), Fixed(1))
	g.Output("output", onnxpb.TensorProto_FLOAT, Sym("batch"), Fixed(4))
	scalar := g.Initializer(Tensor("scalar_shape", []int64{0}, []int64{}))
	yes := g.Initializer(Tensor("true", nil, []bool{true}))
	longest := g.Op("ReduceMax", "longest", []string{n}, AttrInt("keepdims", 0))
	trips := g.Op("Reshape", "trips", []string{longest, scalar})
	g.Node("Loop", []string{trips, yes, x}, []string{"output"}, AttrGraph("body", body))
	return g.Model("identity, looped as many times as the input iterations says")
}
