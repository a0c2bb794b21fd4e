// Package quantize rewrites FP32 ONNX models to dynamic INT8, in Go, with
// no Python: the MatMul and Gemm nodes whose weight is a constant
// initializer, and ONNX Runtime's contrib Attention nodes, get int8
// weights (symmetric, zero point 0, one scale per output channel or per
// weight) while their activations are quantized at run time.
//
// The operator form is com.microsoft DynamicQuantizeMatMul: one node that
// quantizes the activations to uint8, runs MLAS's u8s8 product and
// rescales in its epilogue. Of the three forms ONNX Runtime 1.24's CPU
// build offers it was the fastest on big-mlp at batch 1 and 32 (see
// BENCHMARKS.md): the standard DynamicQuantizeLinear + MatMulInteger +
// Cast + Mul runs four nodes with an int32 tensor in between, and
// DynamicQuantizeLinear + MatMulIntegerToFloat still writes the uint8
// activations out between two nodes. Attention becomes
// DynamicQuantizeLinear + QAttention, its only quantized form.
//
// Load reads a model with its external data (model.onnx_data), checking
// every location, offset and length; Model rewrites; Save writes; File
// does all three and Summary says what was rewritten, what was skipped and
// why, and the sizes.
package quantize
