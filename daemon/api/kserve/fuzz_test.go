package kserve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/engine"
)

// FuzzDecodeInferRequest feeds random bodies and Inference-Header-Content-Length
// values to the request parser. It must never panic, and whatever it
// accepts must be tensors whose data fits their shape.
func FuzzDecodeInferRequest(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"f32","shape":[2,2],"datatype":"FP32","data":[[1.5,-3],[0.25,1e3]]},{"name":"flag","shape":[2,2],"datatype":"BOOL","data":[[true,false],[1,0]]}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}]`), -1)
	header := `{"inputs":[{"name":"i32","shape":[2,2],"datatype":"INT32","parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true}}`
	f.Add(append([]byte(header), make([]byte, 16)...), len(header))
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		req, err := decodeInferRequest(body, headerLen)
		if err != nil {
			var e *route.Error
			if req != nil || !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("%v (%T) along with request %v", err, err, req)
			}
			// Request values in the message are capped; the message
			// stays short whatever the body holds.
			if len(e.Message) > 1024 || len(e.Param) > route.MaxEcho+len("…") {
				t.Fatalf("a message of %d bytes, param of %d: %.200s", len(e.Message), len(e.Param), e.Message)
			}
			return
		}
		if len(req.Inputs) == 0 {
			t.Fatal("accepted a request without inputs")
		}
		for _, in := range req.Inputs {
			size := in.DataType.Size()
			if size == 0 {
				t.Fatalf("input %q has datatype %q", in.Name, in.DataType)
			}
			if int64(len(in.Data)) != in.Elements()*int64(size) {
				t.Fatalf("input %q: %d bytes for shape %v of %s", in.Name, len(in.Data), in.Shape, in.DataType)
			}
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
		}
	})
}

// dataTypes are the datatypes FuzzDecodeData picks from.
var dataTypes = []engine.DataType{engine.Bool, engine.Uint8, engine.Int8, engine.Int16, engine.Uint16,
	engine.Int32, engine.Uint32, engine.Int64, engine.Uint64, engine.FP32, engine.FP64}

// FuzzDecodeData checks the data parser against encoding/json: for a
// JSON array of numbers (nested or flat), decodeData must give exactly the
// elements json.Unmarshal gives for a slice of the datatype's Go type, and
// refuse what json.Unmarshal refuses.
func FuzzDecodeData(f *testing.F) {
	for _, s := range []string{`[1,2,3,4]`, `[[1.5,-3],[0.25,1e3]]`, `[true,false,1,0]`, `[ [ [1] , [2] ] ]`,
		`[255,-1]`, `[1e39]`, `[-0,0.0,1E-7]`, `[18446744073709551615]`, `[-9223372036854775808]`, `[[],[1]]`, `[1,]`, `[01]`} {
		for i := range dataTypes {
			f.Add([]byte(s), uint8(i), int64(4))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, dtIndex uint8, want int64) {
		dt := dataTypes[int(dtIndex)%len(dataTypes)]
		if out, err := decodeData(raw, dt, want); err == nil && int64(len(out)) != want*int64(dt.Size()) {
			t.Fatalf("decodeData(%q, %s, %d) gave %d bytes", raw, dt, want, len(out))
		}
		leaves, ok := jsonLeaves(raw)
		if !ok {
			return
		}
		n := int64(len(leaves))
		got, err := decodeData(raw, dt, n)
		wantBytes, jsonErr := jsonElements(leaves, dt)
		switch {
		case jsonErr == nil && err != nil:
			t.Fatalf("decodeData(%q, %s) = %v; encoding/json accepts it", raw, dt, err)
		case jsonErr != nil && err == nil:
			t.Fatalf("decodeData(%q, %s) accepted what encoding/json refuses: %v", raw, dt, jsonErr)
		case err == nil && !bytes.Equal(got, wantBytes):
			t.Fatalf("decodeData(%q, %s) = %x, encoding/json gives %x", raw, dt, got, wantBytes)
		}
		if _, err := decodeData(raw, dt, n+1); err == nil {
			t.Fatalf("decodeData(%q, %s, %d) accepted %d elements", raw, dt, n+1, n)
		}
		if n > 0 {
			if _, err := decodeData(raw, dt, n-1); err == nil {
				t.Fatalf("decodeData(%q, %s, %d) accepted %d elements", raw, dt, n-1, n)
			}
		}
	})
}

// jsonLeaves returns the leaves of raw, a valid JSON array nested at most
// 32 deep with no empty arrays, in order, as raw JSON; ok is false for
// anything else, which decodeData is not compared on.
func jsonLeaves(raw []byte) (leaves []json.RawMessage, ok bool) {
	if !json.Valid(raw) {
		return nil, false
	}
	var walk func(json.RawMessage, int) bool
	walk = func(v json.RawMessage, depth int) bool {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] != '[' {
			if depth == 0 {
				return false
			}
			leaves = append(leaves, v)
			return true
		}
		if depth >= 32 {
			return false
		}
		var items []json.RawMessage
		if json.Unmarshal(v, &items) != nil || len(items) == 0 {
			return false
		}
		for _, it := range items {
			if !walk(it, depth+1) {
				return false
			}
		}
		return true
	}
	return leaves, walk(raw, 0)
}

// jsonElements decodes leaves with encoding/json as the Go type of dt and
// returns them as little-endian bytes. BOOL also takes 0 and 1, as KServe
// clients send them.
func jsonElements(leaves []json.RawMessage, dt engine.DataType) ([]byte, error) {
	flat := []byte{'['}
	for i, l := range leaves {
		if i > 0 {
			flat = append(flat, ',')
		}
		if string(l) == "null" {
			// encoding/json leaves the element zero; a tensor has no null.
			return nil, errors.New("null element")
		}
		if dt == engine.Bool {
			switch string(l) {
			case "1":
				l = json.RawMessage("true")
			case "0":
				l = json.RawMessage("false")
			}
		}
		flat = append(flat, l...)
	}
	flat = append(flat, ']')
	types := map[engine.DataType]any{
		engine.Bool: []bool{}, engine.Uint8: []uint8{}, engine.Int8: []int8{}, engine.Int16: []int16{},
		engine.Uint16: []uint16{}, engine.Int32: []int32{}, engine.Uint32: []uint32{}, engine.Int64: []int64{},
		engine.Uint64: []uint64{}, engine.FP32: []float32{}, engine.FP64: []float64{},
	}
	p := reflect.New(reflect.TypeOf(types[dt]))
	if dt == engine.Uint8 {
		// encoding/json reads a []uint8 as base64; decode element-wise.
		var v []uint16
		if err := json.Unmarshal(flat, &v); err != nil {
			return nil, err
		}
		out := make([]byte, len(v))
		for i, x := range v {
			if x > 255 {
				return nil, &json.UnmarshalTypeError{Value: "number", Type: reflect.TypeOf(uint8(0))}
			}
			out[i] = byte(x)
		}
		return out, nil
	}
	if err := json.Unmarshal(flat, p.Interface()); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, p.Elem().Interface()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
