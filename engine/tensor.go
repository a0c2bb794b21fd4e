package engine

import (
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// DataType is a tensor element type, named as in the KServe v2 protocol.
type DataType string

// The element types tensor models accept and return.
const (
	Bool   DataType = "BOOL"
	Uint8  DataType = "UINT8"
	Int8   DataType = "INT8"
	Int16  DataType = "INT16"
	Uint16 DataType = "UINT16"
	Int32  DataType = "INT32"
	Uint32 DataType = "UINT32"
	Int64  DataType = "INT64"
	Uint64 DataType = "UINT64"
	FP16   DataType = "FP16" // IEEE 754 binary16
	FP32   DataType = "FP32"
	FP64   DataType = "FP64"
)

var ortTypes = map[DataType]ort.TensorElementDataType{
	Bool: ort.TensorElementDataTypeBool, Uint8: ort.TensorElementDataTypeUint8,
	Int8: ort.TensorElementDataTypeInt8, Int16: ort.TensorElementDataTypeInt16,
	Uint16: ort.TensorElementDataTypeUint16, Int32: ort.TensorElementDataTypeInt32,
	Uint32: ort.TensorElementDataTypeUint32, Int64: ort.TensorElementDataTypeInt64,
	Uint64: ort.TensorElementDataTypeUint64, FP16: ort.TensorElementDataTypeFloat16, FP32: ort.TensorElementDataTypeFloat,
	FP64: ort.TensorElementDataTypeDouble,
}

var sizes = map[DataType]int{
	Bool: 1, Uint8: 1, Int8: 1, Int16: 2, Uint16: 2, Int32: 4, Uint32: 4,
	Int64: 8, Uint64: 8, FP16: 2, FP32: 4, FP64: 8,
}

// ParseDataType accepts a KServe datatype name.
func ParseDataType(s string) (DataType, bool) {
	dt := DataType(strings.ToUpper(s))
	_, ok := sizes[dt]
	return dt, ok
}

// Size is the element size in bytes.
func (d DataType) Size() int { return sizes[d] }

func dataTypeFromORT(t ort.TensorElementDataType) (DataType, bool) {
	for dt, o := range ortTypes {
		if o == t {
			return dt, true
		}
	}
	return "", false
}

// Tensor is a named dense tensor. Data holds the elements in row-major
// order as little-endian bytes, which is both what ONNX Runtime reads and
// what the KServe binary extension sends, and lets batching concatenate and
// split tensors without knowing their element type.
type Tensor struct {
	Name     string
	DataType DataType
	Shape    []int64
	Data     []byte
}

// Elements is the product of the shape.
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Validate checks the shape against the data length.
func (t *Tensor) Validate() error {
	if _, ok := sizes[t.DataType]; !ok {
		return fmt.Errorf("tensor %q: unsupported datatype %q", t.Name, t.DataType)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
		}
		if d > 0 && n > (1<<40)/d {
			return fmt.Errorf("tensor %q: shape %v is too large", t.Name, t.Shape)
		}
		n *= d
	}
	if want := n * int64(t.DataType.Size()); want != int64(len(t.Data)) {
		return fmt.Errorf("tensor %q: shape %v needs %d elements, got %d", t.Name, t.Shape, n, int64(len(t.Data))/int64(t.DataType.Size()))
	}
	return nil
}
