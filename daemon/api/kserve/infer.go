package kserve

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/engine"
)

type inferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type inferOutputRequest struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type inferRequest struct {
	ID         string               `json:"id,omitempty"`
	Parameters map[string]any       `json:"parameters,omitempty"`
	Inputs     []inferInput         `json:"inputs"`
	Outputs    []inferOutputRequest `json:"outputs,omitempty"`
}

// decodedRequest is a v2 inference request ready for the engine.
type decodedRequest struct {
	ID        string
	Inputs    []engine.Tensor
	Outputs   []string
	BinaryOut map[string]bool // outputs to send as binary data
	AllBinary bool
}

// maxTensorElements bounds a single tensor so that a tiny request cannot
// ask for a huge allocation.
const maxTensorElements = 1 << 28

// decodeInferRequest parses a KServe v2 REST inference body. headerLen is
// the Inference-Header-Content-Length value, or -1 when the body is plain
// JSON. Errors are 400 *route.Error values; request values in them are
// capped with route.Echo.
func decodeInferRequest(body []byte, headerLen int) (*decodedRequest, error) {
	header, binary := body, []byte(nil)
	if headerLen >= 0 {
		if headerLen > len(body) {
			return nil, route.BadRequest(fmt.Sprintf("%s is %d but the body has %d bytes", InferenceHeaderLength, headerLen, len(body)))
		}
		header, binary = body[:headerLen], body[headerLen:]
	}
	if req, ok := decodeOnePass(header, binary); ok {
		return req, nil
	}
	return decodeReflect(header, binary)
}

// decodeReflect is the decoder of record: encoding/json into inferRequest,
// then check. decodeOnePass gives its answer faster for the bodies it
// takes; every other body, and every error, comes from here.
func decodeReflect(header, binary []byte) (*decodedRequest, error) {
	var req inferRequest
	if err := route.Decode(header, &req); err != nil {
		return nil, err
	}
	out, err := req.check(binary)
	if err != nil {
		return nil, route.BadRequest(err.Error())
	}
	return out, nil
}

// check turns the decoded JSON, with the binary data after it, into
// tensors whose data fits their shape.
func (req *inferRequest) check(binary []byte) (*decodedRequest, error) {
	if len(req.Inputs) == 0 {
		return nil, fmt.Errorf("request has no inputs")
	}
	out := &decodedRequest{ID: req.ID, BinaryOut: map[string]bool{}}
	out.AllBinary = boolParam(req.Parameters, "binary_data_output")
	seen := map[string]bool{}
	for i, in := range req.Inputs {
		if in.Name == "" {
			return nil, fmt.Errorf("inputs[%d] has no name", i)
		}
		name := route.Quote(in.Name)
		if seen[in.Name] {
			return nil, fmt.Errorf("input %s is given twice", name)
		}
		seen[in.Name] = true
		dt, ok := engine.ParseDataType(in.Datatype)
		if !ok {
			return nil, fmt.Errorf("input %s: unsupported datatype %s (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64)", name, route.Quote(in.Datatype))
		}
		n := int64(1)
		for _, d := range in.Shape {
			if d < 0 {
				return nil, fmt.Errorf("input %s: shape %s has a negative dimension", name, shapeText(in.Shape))
			}
			if d != 0 && n > maxTensorElements/d {
				return nil, fmt.Errorf("input %s: shape %s has more than %d elements", name, shapeText(in.Shape), maxTensorElements)
			}
			n *= d
		}
		if in.Shape == nil {
			return nil, fmt.Errorf("input %s has no shape", name)
		}
		t := engine.Tensor{Name: in.Name, DataType: dt, Shape: in.Shape}
		if size, ok := intParam(in.Parameters, "binary_data_size"); ok {
			if len(in.Data) > 0 {
				return nil, fmt.Errorf("input %s has both data and binary_data_size", name)
			}
			if size != n*int64(dt.Size()) {
				return nil, fmt.Errorf("input %s: binary_data_size %d does not match shape %s of %s (%d bytes)", name, size, shapeText(in.Shape), dt, n*int64(dt.Size()))
			}
			if size > int64(len(binary)) {
				return nil, fmt.Errorf("input %s: binary_data_size %d is more than the %d bytes left in the body", name, size, len(binary))
			}
			t.Data, binary = binary[:size], binary[size:]
		} else {
			if len(in.Data) == 0 {
				return nil, fmt.Errorf("input %s has no data", name)
			}
			data, err := decodeData(in.Data, dt, n)
			if err != nil {
				return nil, fmt.Errorf("input %s: %v", name, err)
			}
			t.Data = data
		}
		out.Inputs = append(out.Inputs, t)
	}
	if len(binary) != 0 {
		return nil, fmt.Errorf("%d bytes of binary data are not claimed by any input's binary_data_size", len(binary))
	}
	for i, o := range req.Outputs {
		if o.Name == "" {
			return nil, fmt.Errorf("outputs[%d] has no name", i)
		}
		out.Outputs = append(out.Outputs, o.Name)
		if boolParam(o.Parameters, "binary_data") {
			out.BinaryOut[o.Name] = true
		}
	}
	return out, nil
}

// shapeText is a request's shape for a message, as route.Echo would cut
// it, without formatting more dimensions than it keeps.
func shapeText(shape []int64) string {
	b := []byte{'['}
	for i, d := range shape {
		if len(b) > route.MaxEcho {
			break
		}
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return route.Echo(string(append(b, ']')))
}

func boolParam(p map[string]any, name string) bool {
	v, _ := p[name].(bool)
	return v
}

func intParam(p map[string]any, name string) (int64, bool) {
	v, ok := p[name]
	if !ok {
		return 0, false
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f != float64(int64(f)) {
		return -1, true
	}
	return int64(f), true
}

// encodeInferResponse appends the v2 response to dst. Outputs asked for
// as binary go after the JSON header; the returned headerLen is then the
// header's length, else -1.
func encodeInferResponse(dst []byte, model, id string, outs []engine.Tensor, req *decodedRequest) (body []byte, headerLen int) {
	size := 256 + len(model) + len(id)
	for _, t := range outs {
		size += 64 + len(t.Name) + 24*len(t.Shape)
		if !req.AllBinary && !req.BinaryOut[t.Name] {
			// The longest element text: "-1.2345678e-38," is 15 bytes;
			// an int64 is up to 21.
			size += len(t.Data) / max(t.DataType.Size(), 1) * maxText(t.DataType)
		} else {
			size += len(t.Data)
		}
	}
	b := slices.Grow(dst, size)
	start := len(b)
	b = append(b, `{"model_name":`...)
	b = appendString(b, model)
	b = append(b, `,"model_version":"1"`...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, id)
	}
	b = append(b, `,"outputs":[`...)
	binaryOut := false
	for i, t := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, t.Name)
		b = append(b, `,"datatype":"`...)
		b = append(b, t.DataType...)
		b = append(b, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, ']')
		if req.AllBinary || req.BinaryOut[t.Name] {
			binaryOut = true
			b = append(b, `,"parameters":{"binary_data_size":`...)
			b = strconv.AppendInt(b, int64(len(t.Data)), 10)
			b = append(b, '}')
		} else {
			b = append(b, `,"data":`...)
			b = appendData(b, t)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	if !binaryOut {
		return b, -1
	}
	headerLen = len(b) - start
	for _, t := range outs {
		if req.AllBinary || req.BinaryOut[t.Name] {
			b = append(b, t.Data...)
		}
	}
	return b, headerLen
}

// maxText is the most bytes appendData writes for one element of dt,
// with its comma.
func maxText(dt engine.DataType) int {
	switch dt {
	case engine.FP16, engine.FP32:
		return 16
	case engine.FP64, engine.Int64, engine.Uint64:
		return 25
	}
	return 12
}

// appendString writes s as a JSON string. Names made only of printable
// ASCII that needs no escape (the usual case) are copied; anything else
// takes encoding/json's escaping, so the output is the same either way.
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
