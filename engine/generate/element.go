package generate

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine"
)

// A decoder's cache and logits are float32 or float16 (as fp16 exports
// have them). Float16 tensors are ort.CustomDataTensor values over Go
// bytes; and since onnxruntime_go copies a float16 output it allocated
// with half its size, the lane allocates every output itself (outputTensors).

// floatType reports whether dt is an element type the cache and logits may
// have.
func floatType(dt ort.TensorElementDataType) bool {
	return dt == ort.TensorElementDataTypeFloat || dt == ort.TensorElementDataTypeFloat16
}

// elemSize is the size of one element of a float type.
func elemSize(dt ort.TensorElementDataType) int {
	if dt == ort.TensorElementDataTypeFloat16 {
		return 2
	}
	return 4
}

// newFloatTensor makes a tensor of dt and shape over data, which is
// little-endian elements of dt (nil for zeros).
func newFloatTensor(dt ort.TensorElementDataType, shape []int64, data []byte) (ort.Value, error) {
	n := ort.Shape(shape).FlattenedSize()
	if data == nil {
		data = make([]byte, int(n)*elemSize(dt))
	}
	if dt == ort.TensorElementDataTypeFloat16 {
		if len(data) == 0 {
			// ONNX Runtime takes a buffer longer than the shape needs;
			// onnxruntime_go refuses an empty one.
			data = make([]byte, 1)
		}
		return ort.NewCustomDataTensor(ort.Shape(slices.Clone(shape)), data, dt)
	}
	// The tensor keeps data as its float32 elements, without a copy.
	f := []float32{}
	if len(data) >= 4 {
		f = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(data))), len(data)/4)
	}
	return ort.NewTensor(ort.Shape(slices.Clone(shape)), f)
}

// floatBytes views the elements of a float32 or float16 tensor as bytes.
func floatBytes(v ort.Value) ([]byte, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		d := t.GetData()
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d)*4), nil
	case *ort.CustomDataTensor:
		if t.DataType() != ort.TensorElementDataTypeFloat16 {
			break
		}
		return t.GetData()[:t.GetShape().FlattenedSize()*2], nil
	}
	return nil, fmt.Errorf("tensor is %T, want float32 or float16", v)
}

// halfToFloat widens IEEE 754 binary16 elements to float32 exactly.
func halfToFloat(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = engine.HalfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// outputTensors allocates the outputs of a step of a batch of b rows of n
// tokens after pastLen cached positions, in io.outputNames order: ONNX
// Runtime writes into them, with no copy after the run, and float16
// outputs come back whole. Only a batchable model's outputs have shapes
// known before the run; for others out is nil and ONNX Runtime allocates.
func (m *Model) outputTensors(b, n, pastLen int) (out []ort.Value, err error) {
	io := m.io
	if !io.batchable {
		return nil, nil
	}
	out = make([]ort.Value, len(io.outputNames))
	fail := func(err error) ([]ort.Value, error) {
		destroyAll(out)
		return nil, fmt.Errorf("model %q: cannot allocate the outputs: %w", m.opts.Name, err)
	}
	logits := []int64{int64(b), int64(n), int64(m.vocab)}
	switch {
	case len(io.logitsShape) == 2:
		logits = []int64{int64(b), int64(m.vocab)}
	case io.logitsShape[1] > 0:
		logits[1] = io.logitsShape[1]
	}
	if out[io.logits], err = newFloatTensor(io.logitsType, logits, nil); err != nil {
		return fail(err)
	}
	shape := slices.Clone(io.pastShape)
	shape[io.batchAxis] = int64(b)
	shape[io.seqAxis] = int64(pastLen + n)
	for _, k := range io.present {
		if out[k], err = newFloatTensor(io.cacheType, shape, nil); err != nil {
			return fail(err)
		}
	}
	// Outputs the lane does not read stay nil: ONNX Runtime allocates them.
	return out, nil
}
