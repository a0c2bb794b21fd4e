package modelgen

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/aiassist/aiassist/engine/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Versions written into every generated model. IR 8 with opset 17 is
// understood by every ONNX Runtime release since 1.13, so the models are not
// tied to the exact runtime the daemon ships with.
const (
	IRVersion    = 8
	OpsetVersion = 17
	ProducerName = "aiassist-modelgen"
)

// Dim is one dimension of a graph input or output: a fixed Size, or a
// symbolic dimension named Param (such as "batch") when Param is not empty.
type Dim struct {
	Size  int64
	Param string
}

// Fixed returns a dimension of fixed size n.
func Fixed(n int64) Dim { return Dim{Size: n} }

// Sym returns a symbolic dimension; inputs sharing a name must agree at run
// time.
func Sym(name string) Dim { return Dim{Param: name} }

// ValueInfo describes a tensor of element type dt and shape dims, as used for
// graph inputs and outputs.
func ValueInfo(name string, dt onnxpb.TensorProto_DataType, dims ...Dim) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		sd := &onnxpb.TensorShapeProto_Dimension{}
		if d.Param != "" {
			sd.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
		} else {
			sd.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
		}
		shape.Dim = append(shape.Dim, sd)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{
			Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: proto.Int32(int32(dt)),
				Shape:    shape,
			}},
		},
	}
}

// Element lists the Go types Tensor can store.
type Element interface {
	~float32 | ~float64 | ~int32 | ~int64 | ~bool
}

// Tensor returns a tensor named name with the given dims (nil or empty for a
// scalar) and row-major data. Values are stored as little-endian raw_data,
// which is what ONNX Runtime reads fastest and what the spec mandates for
// raw_data regardless of the host's byte order.
func Tensor[T Element](name string, dims []int64, data []T) *onnxpb.TensorProto {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	if n != int64(len(data)) {
		panic(fmt.Sprintf("modelgen: tensor %q has dims %v (%d elements) but %d values", name, dims, n, len(data)))
	}
	var dt onnxpb.TensorProto_DataType
	var raw []byte
	switch v := any(data).(type) {
	case []float32:
		dt = onnxpb.TensorProto_FLOAT
		raw = make([]byte, 0, 4*len(v))
		for _, x := range v {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
		}
	case []float64:
		dt = onnxpb.TensorProto_DOUBLE
		raw = make([]byte, 0, 8*len(v))
		for _, x := range v {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(x))
		}
	case []int32:
		dt = onnxpb.TensorProto_INT32
		raw = make([]byte, 0, 4*len(v))
		for _, x := range v {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(x))
		}
	case []int64:
		dt = onnxpb.TensorProto_INT64
		raw = make([]byte, 0, 8*len(v))
		for _, x := range v {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(x))
		}
	case []bool:
		dt = onnxpb.TensorProto_BOOL
		raw = make([]byte, len(v))
		for i, x := range v {
			if x {
				raw[i] = 1
			}
		}
	default:
		// Named types such as type Weight float32 satisfy Element but not
		// the cases above; reject them loudly rather than guess a layout.
		panic(fmt.Sprintf("modelgen: tensor %q: unsupported element type %T", name, data))
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     append([]int64(nil), dims...),
		DataType: proto.Int32(int32(dt)),
		RawData:  raw,
	}
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: append([]int64(nil), v...)}
}

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrTensor returns a TENSOR attribute, as taken by Constant's value.
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// AttrGraph returns a GRAPH attribute, as taken by Loop's body.
func AttrGraph(name string, g *Graph) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g.g}
}

// Graph builds an ONNX graph node by node. Nodes must be added in
// topological order, which ONNX requires of a serialized graph anyway.
type Graph struct {
	g   *onnxpb.GraphProto
	seq int
}

// NewGraph returns an empty graph called name.
func NewGraph(name string) *Graph {
	return &Graph{g: &onnxpb.GraphProto{Name: proto.String(name)}}
}

// Input declares a graph input.
func (g *Graph) Input(name string, dt onnxpb.TensorProto_DataType, dims ...Dim) string {
	g.g.Input = append(g.g.Input, ValueInfo(name, dt, dims...))
	return name
}

// Output declares a graph output; some node must produce a value called name.
func (g *Graph) Output(name string, dt onnxpb.TensorProto_DataType, dims ...Dim) string {
	g.g.Output = append(g.g.Output, ValueInfo(name, dt, dims...))
	return name
}

// Initializer adds a constant tensor (a weight) and returns its name, so it
// can be used inline as a node input.
func (g *Graph) Initializer(t *onnxpb.TensorProto) string {
	g.g.Initializer = append(g.g.Initializer, t)
	return t.GetName()
}

// Node adds a node running op on inputs and producing outputs. Nodes are
// named after their first output, which keeps names unique and makes ONNX
// Runtime's error messages point at the value a reader knows.
func (g *Graph) Node(op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{
		OpType:    proto.String(op),
		Input:     append([]string(nil), inputs...),
		Output:    append([]string(nil), outputs...),
		Attribute: attrs,
	}
	if len(outputs) > 0 {
		n.Name = proto.String(outputs[0] + "/" + op)
	}
	g.g.Node = append(g.g.Node, n)
	return n
}

// Op adds a single-output node and returns the name of its output. An empty
// out gets a generated name, for intermediates nobody refers to by name.
func (g *Graph) Op(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	if out == "" {
		g.seq++
		out = fmt.Sprintf("%s_%d", op, g.seq)
	}
	g.Node(op, inputs, []string{out}, attrs...)
	return out
}

// Proto returns the graph being built; later calls on g keep modifying it.
func (g *Graph) Proto() *onnxpb.GraphProto { return g.g }

// Model wraps the graph in a model with the package's IR version, default
// opset and producer name.
func (g *Graph) Model(doc string) *onnxpb.ModelProto {
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersion),
		ProducerName: proto.String(ProducerName),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(OpsetVersion)}},
		Graph:        g.g,
	}
	if doc != "" {
		m.DocString = proto.String(doc)
	}
	return m
}
