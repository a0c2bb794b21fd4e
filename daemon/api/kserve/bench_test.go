package kserve

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"github.com/aiassist/aiassist/engine"
)

// BenchmarkKServeJSON times the JSON side of one big-mlp request: decoding
// a 1024-float row and encoding a 1024-float answer (BENCHMARKS.md).
func BenchmarkKServeJSON(b *testing.B) {
	body := bigMLPBody()
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			if _, err := decodeInferRequest(body, -1); err != nil {
				b.Fatal(err)
			}
		}
	})
	req, err := decodeInferRequest(body, -1)
	if err != nil {
		b.Fatal(err)
	}
	out := []engine.Tensor{{Name: "output", DataType: engine.FP32, Shape: []int64{1, 1024}, Data: make([]byte, 4096)}}
	for i := range out[0].Data {
		out[0].Data[i] = byte(i*7 + 3) // arbitrary floats, most with 7 to 9 digits
	}
	// Into a reused buffer, as the handler writes into the response's
	// pooled body buffer.
	b.Run("encode", func(b *testing.B) {
		var buf []byte
		for range b.N {
			buf, _ = encodeInferResponse(buf[:0], "big-mlp", "", out, req)
		}
	})
	// The "before" of the encoder, in the same run: the same answer's
	// numbers through strconv, as appendData wrote them until floattext.
	b.Run("encode-strconv", func(b *testing.B) {
		buf := make([]byte, 0, 16*1024)
		for range b.N {
			buf = append(buf[:0], '[')
			for off := 0; off < len(out[0].Data); off += 4 {
				if off > 0 {
					buf = append(buf, ',')
				}
				f := math.Float32frombits(binary.LittleEndian.Uint32(out[0].Data[off:]))
				if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
					buf = append(buf, "null"...)
					continue
				}
				buf = strconv.AppendFloat(buf, float64(f), 'g', -1, 32)
			}
			buf = append(buf, ']')
		}
	})
}

// bigMLPBody is one big-mlp request in JSON: a 1024-float row.
func bigMLPBody() []byte {
	body := []byte(`{"inputs":[{"name":"input","shape":[1,1024],"datatype":"FP32","data":[`)
	for i := range 1024 {
		if i > 0 {
			body = append(body, ',')
		}
		body = strconv.AppendFloat(body, float64(i%17)/8-1, 'g', -1, 32)
	}
	body = append(body, `]}]}`...)
	return body
}

// BenchmarkKServeJSONReflect is the decoder of record, encoding/json and
// then decodeData, on BenchmarkKServeJSON's body: the "before" of the
// one-pass decoder, measured in the same run.
func BenchmarkKServeJSONReflect(b *testing.B) {
	body := bigMLPBody()
	b.SetBytes(int64(len(body)))
	for range b.N {
		if _, err := decodeReflect(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
