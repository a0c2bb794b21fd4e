package quantize

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/aiassist/aiassist/engine/onnxpb"
)

// maxModelBytes bounds the .onnx file Load reads into memory: protobuf
// cannot encode a message of 2 GB or more, so a larger file is no model.
const maxModelBytes = 2<<30 - 1

// Load reads the ONNX model at path and brings every tensor kept in an
// external data file (the location, offset and length entries of a large
// export's model.onnx_data) into the model, so the result is self-contained
// and can be written anywhere. A location must be a file inside the model's
// folder, and offset and length must lie within it.
func Load(path string) (*onnxpb.ModelProto, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", path)
	case st.Size() == 0:
		return nil, fmt.Errorf("%s is empty", path)
	case st.Size() > maxModelBytes:
		return nil, fmt.Errorf("%s is %d bytes, more than an ONNX file can hold (2 GB); keep the weights in external data", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return load(b, path)
}

// load parses the model file path holds b, and brings its external data
// in from path's folder.
func load(b []byte, path string) (*onnxpb.ModelProto, error) {
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid ONNX model: %w", path, err)
	}
	d := &dataFiles{dir: filepath.Dir(path), open: map[string]*os.File{}}
	defer d.close()
	var errs []error
	eachTensor(m, func(t *onnxpb.TensorProto) {
		if err := d.inline(t); err != nil {
			errs = append(errs, err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse decodes an ONNX model and checks what the quantizer relies on: a
// graph, and initializers whose stored data fits their shape. It does not
// read external data (see Load).
func Parse(b []byte) (*onnxpb.ModelProto, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	if m.GetGraph() == nil {
		return nil, errors.New("the model has no graph")
	}
	return m, nil
}

// dataFiles are the open external data files of one model.
type dataFiles struct {
	dir  string
	open map[string]*os.File
}

func (d *dataFiles) close() {
	for _, f := range d.open {
		f.Close()
	}
}

// inline reads the external data of t, if it has any, into t.RawData.
func (d *dataFiles) inline(t *onnxpb.TensorProto) error {
	if t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
		return nil
	}
	name := t.GetName()
	var location string
	offset, length := int64(0), int64(-1)
	for _, e := range t.GetExternalData() {
		var err error
		switch e.GetKey() {
		case "location":
			location = e.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(e.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(e.GetValue(), 10, 64)
		}
		if err != nil {
			return fmt.Errorf("tensor %q: external data %s %q is not a number", name, e.GetKey(), e.GetValue())
		}
	}
	switch {
	case location == "":
		return fmt.Errorf("tensor %q has external data but no location", name)
	case !filepath.IsLocal(location):
		return fmt.Errorf("tensor %q keeps its data in %q, outside the model's folder", name, location)
	case offset < 0:
		return fmt.Errorf("tensor %q: external data offset %d is negative", name, offset)
	}
	location = filepath.Clean(location)
	f := d.open[location]
	if f == nil {
		var err error
		if f, err = os.Open(filepath.Join(d.dir, location)); err != nil {
			return fmt.Errorf("tensor %q keeps its data in %s: %w", name, location, err)
		}
		d.open[location] = f
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if length < 0 {
		length = st.Size() - offset
	}
	if offset > st.Size() || length < 0 || length > st.Size()-offset {
		return fmt.Errorf("tensor %q: external data at offset %d, length %d runs past the end of %s (%d bytes)", name, offset, length, location, st.Size())
	}
	if want, ok := byteSize(t); ok && want != length {
		return fmt.Errorf("tensor %q: shape %v needs %d bytes but its external data in %s has %d", name, t.GetDims(), want, location, length)
	}
	b := make([]byte, length)
	if _, err := f.ReadAt(b, offset); err != nil {
		return fmt.Errorf("tensor %q: cannot read its data from %s: %w", name, location, err)
	}
	t.RawData = b
	t.DataLocation = nil
	t.ExternalData = nil
	return nil
}

// elemSize is the byte size of the fixed-size element types.
var elemSize = map[onnxpb.TensorProto_DataType]int64{
	onnxpb.TensorProto_FLOAT: 4, onnxpb.TensorProto_UINT8: 1, onnxpb.TensorProto_INT8: 1,
	onnxpb.TensorProto_UINT16: 2, onnxpb.TensorProto_INT16: 2, onnxpb.TensorProto_INT32: 4,
	onnxpb.TensorProto_INT64: 8, onnxpb.TensorProto_BOOL: 1, onnxpb.TensorProto_FLOAT16: 2,
	onnxpb.TensorProto_DOUBLE: 8, onnxpb.TensorProto_UINT32: 4, onnxpb.TensorProto_UINT64: 8,
	onnxpb.TensorProto_BFLOAT16: 2,
}

// elements is the product of dims, or false if a dimension is negative or
// the product overflows.
func elements(dims []int64) (int64, bool) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 || (d > 0 && n > (1<<62)/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// byteSize is the raw size of t's data, if its type has a fixed size.
func byteSize(t *onnxpb.TensorProto) (int64, bool) {
	size, ok := elemSize[onnxpb.TensorProto_DataType(t.GetDataType())]
	if !ok {
		return 0, false
	}
	n, ok := elements(t.GetDims())
	if !ok || n > (1<<62)/size {
		return 0, false
	}
	return n * size, true
}

// eachTensor calls f on every tensor of m: initializers, sparse
// initializers, Constant values and other tensor attributes, in subgraphs
// and functions too.
func eachTensor(m *onnxpb.ModelProto, f func(*onnxpb.TensorProto)) {
	sparse := func(s *onnxpb.SparseTensorProto) {
		if s.GetValues() != nil {
			f(s.GetValues())
		}
		if s.GetIndices() != nil {
			f(s.GetIndices())
		}
	}
	var graph func(g *onnxpb.GraphProto)
	nodes := func(ns []*onnxpb.NodeProto) {
		for _, n := range ns {
			for _, a := range n.GetAttribute() {
				if a.GetT() != nil {
					f(a.GetT())
				}
				for _, t := range a.GetTensors() {
					f(t)
				}
				if a.GetSparseTensor() != nil {
					sparse(a.GetSparseTensor())
				}
				for _, s := range a.GetSparseTensors() {
					sparse(s)
				}
				if a.GetG() != nil {
					graph(a.GetG())
				}
				for _, g := range a.GetGraphs() {
					graph(g)
				}
			}
		}
	}
	graph = func(g *onnxpb.GraphProto) {
		for _, t := range g.GetInitializer() {
			f(t)
		}
		for _, s := range g.GetSparseInitializer() {
			sparse(s)
		}
		nodes(g.GetNode())
	}
	graph(m.GetGraph())
	for _, fn := range m.GetFunctions() {
		nodes(fn.GetNode())
	}
}
