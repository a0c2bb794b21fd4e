// Package quantize rewrites FP32 ONNX models to dynamic INT8, in Go, with
// no Python: the MatMul and Gemm nodes whose weight is a constant
// initializer, and ONNX Runtime's contrib Attention nodes, get int8
// weights (symmetric, zero point 0, one scale per output channel or per
// weight) while their activations are quantized at run time.
//
// MatMul and Gemm become com.microsoft DynamicQuantizeMatMul, with a
// constant bias Add after them folded into its bias: one node that
// quantizes the activations to uint8, runs MLAS's u8s8 product and
// rescales in its epilogue. Measured with ONNX Runtime 1.24 on big-mlp at
// batch 1 and 32 (BENCHMARKS.md), the standard DynamicQuantizeLinear +
// MatMulInteger + Cast + Mul form and DynamicQuantizeLinear +
// MatMulIntegerToFloat run at the same speed, because ONNX Runtime's graph
// optimizer fuses both into exactly this node; writing it directly does not
// depend on that fusion (a lower optimization level or another runtime
// skips it) nor on opset 11. The other two forms remain as Options.Form for
// such measurements. Attention becomes DynamicQuantizeLinear + QAttention,
// its quantized form, which takes the same mask and past.
//
// Weights are stored in [-63, 63] unless Options.FullRange: without VNNI
// the u8s8 kernel adds pairs of products in 16 bits, which full-range
// weights saturate.
//
// Load reads a model with its external data (model.onnx_data), checking
// every location, offset and length; Model rewrites; Save writes; File
// does all three and Summary says what was rewritten, what was skipped and
// why, and the sizes.
package quantize
