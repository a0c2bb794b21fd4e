package schema

// The values of Model.Quantization (quantization in #Model).
const (
	QuantizationNone = "none"
	QuantizationInt8 = "int8"
)
