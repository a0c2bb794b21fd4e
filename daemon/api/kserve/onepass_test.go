package kserve

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/engine"
)

// FuzzOnePass holds the one-pass decoder to the decoder of record: what it
// accepts, encoding/json and check accept too, as the same request; what
// it declines, decodeInferRequest answers exactly as decodeReflect does.
func FuzzOnePass(f *testing.F) {
	for _, s := range onePassBodies {
		f.Add([]byte(s), -1)
	}
	header := `{"inputs":[{"name":"i32","shape":[2,2],"datatype":"INT32","parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true}}`
	f.Add(append([]byte(header), make([]byte, 16)...), len(header))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1e-300,0.1]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`), -1)
	f.Fuzz(func(t *testing.T, body []byte, headerLen int) {
		if headerLen > len(body) || headerLen < -1 {
			headerLen = -1
		}
		header, binary := body, []byte(nil)
		if headerLen >= 0 {
			header, binary = body[:headerLen], body[headerLen:]
		}
		want, wantErr := decodeReflect(header, binary)
		fast, ok := decodeOnePass(header, binary)
		if ok {
			if wantErr != nil {
				t.Fatalf("one-pass accepted what the decoder of record refuses (%v): %q", wantErr, body)
			}
			if !reflect.DeepEqual(fast, want) {
				t.Fatalf("one-pass gives %+v, the decoder of record %+v, for %q", fast, want, body)
			}
		}
		got, err := decodeInferRequest(body, headerLen)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || (err == nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("decodeInferRequest = %+v, %v; decodeReflect = %+v, %v", got, err, want, wantErr)
		}
	})
}

// onePassBodies are requests as clients send them; the one-pass decoder
// must take each (TestOnePassTakesClientBodies) and FuzzOnePass starts
// from them.
var onePassBodies = []string{
	`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
	`{"id":"r1","inputs":[{"name":"f32","shape":[2,2],"datatype":"FP32","data":[[1.5,-3],[0.25,1e3]]},{"name":"flag","shape":[2,2],"datatype":"BOOL","data":[[true,false],[1,0]]}],"outputs":[{"name":"out"}]}`,
	` { "inputs" : [ { "data" : [ 7 , -8 ] , "datatype" : "int8" , "shape" : [ 2 ] , "name" : "x" } ] , "parameters" : { "binary_data_output" : false , "other" : [ null , {"a" : "b"} , 1.5e3 ] } } `,
	`{"inputs":[{"name":"u","shape":[3],"datatype":"UINT64","data":[18446744073709551615,0,1]},{"name":"i","shape":[1],"datatype":"INT64","data":[-9223372036854775808]}]}`,
	`{"inputs":[{"name":"f","shape":[6],"datatype":"FP32","data":[-0,0.0,1E-7,3.4028234663852886e38,1.17549435e-38,0.30000001192092896]}]}`,
	`{"inputs":[{"name":"d","shape":[4],"datatype":"FP64","data":[0.1,1e22,123456789012345678901234567890,-2.2250738585072014e-308]}]}`,
	`{"inputs":[{"name":"s","shape":[],"datatype":"INT16","data":[-32768]},{"name":"w","shape":[1],"datatype":"UINT16","data":[65535]}]}`,
	`{"inputs":[{"name":"n","shape":[1],"datatype":"UINT32","data":[4294967295]},{"name":"m","shape":[1],"datatype":"INT32","data":[2147483647]},{"name":"b","shape":[1],"datatype":"UINT8","data":[255]}]}`,
	`{"inputs":[{"name":"é","shape":[1],"datatype":"FP32","data":[0.00001234567]}]}`,
	`{"inputs":[{"name":"h","shape":[5],"datatype":"FP16","data":[0.1,-2,65504,6e-8,65519]}]}`,
}

// TestFP16RoundTrip: every finite FP16 written as JSON data reads back as
// itself, and a number beyond FP16's range is refused.
func TestFP16RoundTrip(t *testing.T) {
	var tensor engine.Tensor
	tensor.DataType = engine.FP16
	n := 0
	for h := range 1 << 16 {
		if h&0x7c00 == 0x7c00 {
			continue // Inf and NaN have no JSON form
		}
		tensor.Data = append(tensor.Data, byte(h), byte(h>>8))
		n++
	}
	text := appendData(nil, tensor)
	for _, decode := range []func() ([]byte, bool){
		func() ([]byte, bool) { b, err := decodeData(text, engine.FP16, int64(n)); return b, err == nil },
		func() ([]byte, bool) { s := scanner{b: text}; return s.data(engine.FP16, int64(n)) },
	} {
		got, ok := decode()
		if !ok || !bytes.Equal(got, tensor.Data) {
			t.Fatalf("FP16 data did not read back as written (ok %v)", ok)
		}
	}
	if _, err := decodeData([]byte("[65520]"), engine.FP16, 1); err == nil {
		t.Fatal("65520 accepted as FP16")
	}
}

// TestOnePassTakesClientBodies: the fast path is taken for the requests
// clients send, and gives what the decoder of record gives.
func TestOnePassTakesClientBodies(t *testing.T) {
	for _, body := range onePassBodies {
		want, err := decodeReflect([]byte(body), nil)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, ok := decodeOnePass([]byte(body), nil)
		if !ok {
			t.Fatalf("one-pass declined %s", body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: one-pass %+v, decoder of record %+v", body, got, want)
		}
	}
	header := `{"inputs":[{"name":"i","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}],"outputs":[{"name":"o","parameters":{"binary_data":true}}]}`
	tail := []byte{1, 0, 0, 0, 2, 0, 0, 0}
	got, ok := decodeOnePass([]byte(header), tail)
	if !ok || string(got.Inputs[0].Data) != string(tail) || !got.BinaryOut["o"] {
		t.Fatalf("one-pass on a binary request: %+v, %v", got, ok)
	}
}

// TestOnePassDeclines: bodies the one-pass decoder leaves to the decoder
// of record, whether they are good (a field name in another case, an
// escape) or bad (a repeated field, a null, too many elements).
func TestOnePassDeclines(t *testing.T) {
	for _, body := range []string{
		`{"Inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"in\u0070ut","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"inputs":[{"name":"b","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":null}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[01]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1e39]}]}`,
		`{"inputs":[{"name":"a","shape":[2],"datatype":"UINT8","data":[1,256]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]}]`,
		`{"inputs":[]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"x":1,"x":2}}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[` + strings.Repeat("[", 40) + `1` + strings.Repeat("]", 41) + `}]}`,
	} {
		if _, ok := decodeOnePass([]byte(body), nil); ok {
			t.Errorf("one-pass took %s", body)
		}
	}
}

// TestFP32RunNumber checks fp32Run's eight-bytes-at-a-time number reader
// against strconv on random numbers of every length it takes and some it
// must decline, each followed by what can follow a number: only those
// directly followed by a comma are its to read.
func TestFP32RunNumber(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	for range 200_000 {
		text := ""
		if r.IntN(2) == 0 {
			text = "-"
		}
		text += digits(1 + r.IntN(8))
		if r.IntN(4) > 0 {
			text += "." + digits(r.IntN(9))
		}
		if r.IntN(10) == 0 {
			text += "e" + digits(1)
		}
		after := []string{",", "]", " ", ":", "/", "\xfa", "\xff"}[r.IntN(7)]
		body := []byte(text + after + ",12345678901234567890")
		e := make([]byte, 4)
		unsigned := strings.TrimPrefix(text, "-")
		intPart, fracPart, hasDot := strings.Cut(strings.SplitN(unsigned, "e", 2)[0], ".")
		takes := len(intPart)+len(fracPart) <= 7 && !strings.Contains(text, "e") &&
			(len(intPart) == 1 || intPart[0] != '0') && (!hasDot || fracPart != "") && after == ","
		end, k := fp32Run(body, 0, e, 0)
		if ok := k == 1; ok != takes {
			t.Fatalf("%q followed by %q: fp32Run took it: %v, want %v", text, after, ok, takes)
		}
		if k == 0 {
			continue
		}
		want, err := strconv.ParseFloat(text, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := math.Float32frombits(binary.LittleEndian.Uint32(e)); got != float32(want) || end != len(text)+1 {
			t.Fatalf("%q: got %v ending at %d, strconv %v", text, got, end, float32(want))
		}
	}
}

// TestFP32Run holds the comma-led run reader to the decoder of record on
// long FP32 arrays of random numbers, most of the forms it takes and some
// it must hand back (exponents, long or malformed numbers, white space,
// nested rows), so that its stops and restarts are exercised too.
func TestFP32Run(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	integer := func(n int) string { // no leading zero
		d := digits(n)
		if n > 1 && d[0] == '0' {
			d = "1" + d[1:]
		}
		return d
	}
	number := func() string {
		s := ""
		if r.IntN(2) == 0 {
			s = "-"
		}
		switch r.IntN(60) {
		case 0, 1, 2:
			return s + integer(1+r.IntN(3)) + "e" + digits(1)
		case 3, 4, 5, 6:
			return s + integer(1+r.IntN(12)) + "." + digits(1+r.IntN(12))
		case 7:
			return s + "0" + digits(1+r.IntN(3)) // a leading zero: refused by both
		case 8:
			return s + integer(1+r.IntN(3)) + "." // no fraction digits: refused by both
		default:
			return s + integer(1+r.IntN(4)) + "." + digits(1+r.IntN(3))
		}
	}
	taken := 0
	for round := range 2000 {
		n := 1 + r.IntN(64)
		var data strings.Builder
		nested := round%5 == 0 && n%2 == 0
		for i := range n {
			if i > 0 {
				data.WriteString([]string{",", ",", ",", ", ", " ,"}[r.IntN(5)])
			}
			if nested && i%2 == 0 {
				if i > 0 {
					data.WriteString("],")
				}
				data.WriteString("[")
			}
			data.WriteString(number())
		}
		if nested {
			data.WriteString("]")
		}
		shape := fmt.Sprintf("[%d]", n)
		body := `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"FP32","data":[` + data.String() + `]}]}`
		if nested {
			body = `{"inputs":[{"name":"x","shape":[` + fmt.Sprint(n/2) + `,2],"datatype":"FP32","data":[` + data.String() + `]}]}`
		}
		want, wantErr := decodeReflect([]byte(body), nil)
		fast, ok := decodeOnePass([]byte(body), nil)
		if ok && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
			t.Fatalf("one-pass %+v, decoder of record %+v (%v), for %s", fast, want, wantErr, body)
		}
		if ok {
			taken++
		}
	}
	// Valid bodies must mostly be the one-pass decoder's, or the run
	// reader was not what read them.
	if taken < 600 {
		t.Fatalf("the one-pass decoder took %d of 2000 bodies", taken)
	}
}
