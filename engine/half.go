package engine

import (
	"fmt"
	"math"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// HalfToFloat widens an IEEE 754 binary16 (FP16) to float32 exactly.
// Small enough to inline: the decoder lane widens whole fp16 logits and
// caches through it.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	if exp == 0 { // zero or subnormal: mant × 2^-24, exact in float32
		return math.Float32frombits(math.Float32bits(float32(mant)/(1<<24)) | sign)
	}
	if exp == 0x1f { // Inf and NaN, the payload kept
		exp = 0xff - 112
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// FloatToHalf rounds f to the nearest binary16, ties to even, with one
// rounding (a float64 rounded through float32 could round twice). ok is
// false when a finite f is beyond FP16's range (±65504 and the half unit
// above it).
func FloatToHalf(f float64) (h uint16, ok bool) {
	b := math.Float64bits(f)
	sign := uint16(b>>48) & 0x8000
	exp := int(b>>52&0x7ff) - 1023
	mant := b & (1<<52 - 1)
	switch {
	case exp == 1024: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00, true
		}
		return sign | 0x7c00, true
	case exp > 15:
		return sign | 0x7c00, false
	case exp < -25:
		return sign, true
	}
	var v uint64
	var shift uint
	if exp >= -14 { // normal: 10 of the 52 mantissa bits stay
		v, shift = uint64(exp+15)<<10|mant>>42, 42
		mant &= 1<<42 - 1
	} else { // subnormal
		mant |= 1 << 52
		shift = uint(-exp - 14 + 42)
		v = mant >> shift
		mant &= 1<<shift - 1
	}
	half := uint64(1) << (shift - 1)
	if mant > half || (mant == half && v&1 == 1) {
		v++ // may carry into the exponent, up to Inf
	}
	if v >= 0x7c00 {
		return sign | 0x7c00, false
	}
	return sign | uint16(v), true
}

// outputTensors allocates the outputs of a batch of total rows that have
// a shape known before the run: a batched model's outputs whose
// dimensions past the first are fixed. ONNX Runtime writes into them, so
// no copy follows the run, and FP16 ones come back whole (onnxruntime_go
// copies an FP16 output it allocated with half its size). The others stay
// nil, for ONNX Runtime to allocate.
func (m *TensorModel) outputTensors(total int64) ([]ort.Value, error) {
	out := make([]ort.Value, len(m.outputs))
	if !m.batched {
		return out, nil
	}
	for i, o := range m.outputs {
		shape, ok := knownShape(o.Shape, total)
		if !ok {
			continue
		}
		n := ort.Shape(shape).FlattenedSize() * int64(o.DataType.Size())
		if n == 0 {
			continue
		}
		v, err := ort.NewCustomDataTensor(ort.Shape(shape), make([]byte, n), ortTypes[o.DataType])
		if err != nil {
			destroyValues(out)
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// knownShape is shape with its first dimension rows, when all the others
// are fixed.
func knownShape(shape []int64, rows int64) ([]int64, bool) {
	if len(shape) == 0 || slices.ContainsFunc(shape[1:], func(d int64) bool { return d < 0 }) {
		return nil, false
	}
	s := slices.Clone(shape)
	s[0] = rows
	return s, true
}

// checkHalfOutputs refuses an FP16 output whose shape only the run tells:
// ONNX Runtime would allocate it, and onnxruntime_go returns only half of
// it.
func (m *TensorModel) checkHalfOutputs() error {
	for _, o := range m.outputs {
		if o.DataType != FP16 {
			continue
		}
		if _, ok := knownShape(o.Shape, 1); !ok || !m.batched {
			return fmt.Errorf("output %q is FP16 with shape %s, known only after the run; an FP16 output needs a dynamic first dimension, fixed others, and batching on (or export the model with FP32 outputs)", o.Name, shapeString(o.Shape))
		}
	}
	return nil
}

func destroyValues(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}
