package modelgen

import (
	"encoding/binary"
	"math"
	"strings"

	"github.com/aiassist/aiassist/engine/onnxpb"
	"google.golang.org/protobuf/proto"
)

// HalfIO reports the graph inputs and outputs FP16 stores as float16 in a
// decoder with Optimum's I/O: the key/value cache in and out, and the
// logits. (Optimum's fp16 exports keep input_ids, attention_mask and
// position_ids int64, as here.)
func HalfIO(name string) bool {
	return name == "logits" || strings.HasPrefix(name, "past_key_values.") || strings.HasPrefix(name, "present.")
}

// halfWeight reports whether an initializer is a weight FP16 stores as
// float16. Scalars such as the masked score (-1e9, beyond float16's range)
// and the rotary frequencies stay float32.
func halfWeight(t *onnxpb.TensorProto) bool {
	return t.GetDataType() == int32(onnxpb.TensorProto_FLOAT) &&
		(strings.HasSuffix(t.GetName(), ".weight") || strings.HasSuffix(t.GetName(), ".bias"))
}

// FP16 returns a copy of model laid out as an fp16 export: its weights
// stored as float16, and the inputs and outputs io names float16 instead of
// float32. Arithmetic stays float32 — a Cast follows each float16 weight
// and input and precedes each float16 output — so every ONNX Runtime CPU
// build runs it, and ONNX Runtime folds the weights' Casts at load. Its
// float32 twin, with the same weights, is RoundFP16(model).
func FP16(model *onnxpb.ModelProto, io func(name string) bool) *onnxpb.ModelProto {
	m := proto.Clone(model).(*onnxpb.ModelProto)
	g := m.Graph
	f16, f32 := int32(onnxpb.TensorProto_FLOAT16), int64(onnxpb.TensorProto_FLOAT)
	rename := map[string]string{} // consumer input name -> float32 value
	var casts []*onnxpb.NodeProto
	cast := func(from, to string, dt int64) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String("cast_" + to), OpType: proto.String("Cast"),
			Input: []string{from}, Output: []string{to}, Attribute: []*onnxpb.AttributeProto{AttrInt("to", dt)}}
	}
	for _, t := range g.Initializer {
		if !halfWeight(t) {
			continue
		}
		name := t.GetName()
		t.RawData = halfBytes(t.RawData)
		t.DataType = proto.Int32(f16)
		t.Name = proto.String(name + ".fp16")
		casts = append(casts, cast(name+".fp16", name, f32))
	}
	for _, in := range g.Input {
		if io(in.GetName()) && elemType(in) == int32(onnxpb.TensorProto_FLOAT) {
			setElemType(in, f16)
			rename[in.GetName()] = in.GetName() + ".f32"
			casts = append(casts, cast(in.GetName(), in.GetName()+".f32", f32))
		}
	}
	for _, n := range g.Node {
		for i, v := range n.Input {
			if r, ok := rename[v]; ok {
				n.Input[i] = r
			}
		}
	}
	var tail []*onnxpb.NodeProto
	for _, out := range g.Output {
		if !io(out.GetName()) || elemType(out) != int32(onnxpb.TensorProto_FLOAT) {
			continue
		}
		setElemType(out, f16)
		name, f32Name := out.GetName(), out.GetName()+".f32"
		for _, n := range g.Node {
			for i, v := range n.Output {
				if v == name {
					n.Output[i] = f32Name
				}
			}
			for i, v := range n.Input {
				if v == name { // a graph output also read inside the graph
					n.Input[i] = f32Name
				}
			}
		}
		tail = append(tail, cast(f32Name, name, int64(onnxpb.TensorProto_FLOAT16)))
	}
	g.Node = append(append(casts, g.Node...), tail...)
	return m
}

// RoundFP16 returns a copy of model whose FP16-stored weights hold the
// float32 values nearest their float16 rounding: the float32 twin of
// FP16(model, io), whose outputs differ from it only by the float16
// cache and logits.
func RoundFP16(model *onnxpb.ModelProto) *onnxpb.ModelProto {
	m := proto.Clone(model).(*onnxpb.ModelProto)
	for _, t := range m.Graph.Initializer {
		if halfWeight(t) {
			h := halfBytes(t.RawData)
			for i := range len(h) / 2 {
				f := HalfToFloat(binary.LittleEndian.Uint16(h[2*i:]))
				binary.LittleEndian.PutUint32(t.RawData[4*i:], math.Float32bits(f))
			}
		}
	}
	return m
}

func elemType(v *onnxpb.ValueInfoProto) int32 {
	return v.GetType().GetTensorType().GetElemType()
}

func setElemType(v *onnxpb.ValueInfoProto, dt int32) {
	v.GetType().GetTensorType().ElemType = proto.Int32(dt)
}

// halfBytes converts little-endian float32 raw data to float16.
func halfBytes(raw []byte) []byte {
	out := make([]byte, len(raw)/2)
	for i := range len(raw) / 4 {
		f := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		binary.LittleEndian.PutUint16(out[2*i:], FloatToHalf(f))
	}
	return out
}

// FloatToHalf rounds f to the nearest IEEE 754 binary16, ties to even;
// beyond its range is ±Inf, NaN stays NaN.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127
	mant := b & 0x7fffff
	switch {
	case exp == 128: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp > 15:
		return sign | 0x7c00
	case exp >= -14: // normal
		h := uint32(exp+15)<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, up to Inf: right
		}
		return sign | uint16(h)
	case exp >= -25: // subnormal
		mant |= 0x800000
		shift := uint(-exp - 14 + 13)
		h := mant >> shift
		rest := mant & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rest > halfway || (rest == halfway && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	return sign
}

// HalfToFloat widens an IEEE 754 binary16 to float32 exactly.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
