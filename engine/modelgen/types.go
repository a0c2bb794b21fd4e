package modelgen

import "github.com/aiassist/aiassist/engine/onnxpb"

// TypesModel returns a model with one input and one output per datatype, for
// testing a KServe v2 server's datatype handling end to end. Every tensor is
// [b, 2] with a dynamic first dimension b:
//
//	f32  FP32  -> f32_out  = f32 * 2
//	f64  FP64  -> f64_out  = f64 + 1
//	i32  INT32 -> i32_out  = i32 + 1
//	i64  INT64 -> i64_out  = i64 * 3
//	flag BOOL  -> flag_out = !flag
//
// Each operation changes every value, so a server that echoed its inputs, or
// crossed two outputs of the same type, would fail.
func TypesModel() *onnxpb.ModelProto {
	b, two := Sym("b"), Fixed(2)
	g := NewGraph("types")
	io := []struct {
		name string
		dt   onnxpb.TensorProto_DataType
	}{
		{"f32", onnxpb.TensorProto_FLOAT},
		{"f64", onnxpb.TensorProto_DOUBLE},
		{"i32", onnxpb.TensorProto_INT32},
		{"i64", onnxpb.TensorProto_INT64},
		{"flag", onnxpb.TensorProto_BOOL},
	}
	for _, v := range io {
		g.Input(v.name, v.dt, b, two)
	}
	for _, v := range io {
		g.Output(v.name+"_out", v.dt, b, two)
	}
	// Scalar initializers broadcast over [b, 2].
	g.Op("Mul", "f32_out", []string{"f32", g.Initializer(Tensor("f32_factor", nil, []float32{2}))})
	g.Op("Add", "f64_out", []string{"f64", g.Initializer(Tensor("f64_addend", nil, []float64{1}))})
	g.Op("Add", "i32_out", []string{"i32", g.Initializer(Tensor("i32_addend", nil, []int32{1}))})
	g.Op("Mul", "i64_out", []string{"i64", g.Initializer(Tensor("i64_factor", nil, []int64{3}))})
	g.Op("Not", "flag_out", []string{"flag"})
	return g.Model("one input and output per datatype, for datatype tests")
}
