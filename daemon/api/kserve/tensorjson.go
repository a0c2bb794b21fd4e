package kserve

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/aiassist/aiassist/daemon/api/floattext"
	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/engine"
)

// decodeData parses a KServe "data" array, flat or nested, into
// little-endian element bytes of type dt. want is the element count the
// shape implies; a mismatch is an error, so shape and data always agree.
func decodeData(raw []byte, dt engine.DataType, want int64) ([]byte, error) {
	size := dt.Size()
	if want < 0 || want > int64(len(raw)) { // every element needs at least one byte
		return nil, fmt.Errorf("data is too short for the %d elements the shape needs", want)
	}
	out := make([]byte, 0, int(want)*size)
	p := dataParser{b: raw}
	p.skipSpace()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return nil, fmt.Errorf("data must be a JSON array")
	}
	depth := 0
	expectValue := true
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, fmt.Errorf("data: unexpected end")
		}
		c := p.b[p.i]
		switch {
		case c == '[':
			if !expectValue {
				return nil, p.errorf("expected ',' or ']'")
			}
			depth++
			if depth > 32 {
				return nil, p.errorf("arrays nested too deeply")
			}
			p.i++
			p.skipSpace()
			if p.i < len(p.b) && p.b[p.i] == ']' {
				return nil, p.errorf("empty array")
			}
			continue
		case c == ']':
			if expectValue {
				return nil, p.errorf("expected a value")
			}
			depth--
			p.i++
			if depth == 0 {
				p.skipSpace()
				if p.i != len(p.b) {
					return nil, p.errorf("trailing characters")
				}
				if n := int64(len(out) / size); n != want {
					return nil, fmt.Errorf("shape needs %d elements, data has %d", want, n)
				}
				return out, nil
			}
		case c == ',':
			if expectValue {
				return nil, p.errorf("expected a value")
			}
			expectValue = true
			p.i++
			continue
		default:
			if !expectValue {
				return nil, p.errorf("expected ',' or ']'")
			}
			if int64(len(out)/size) >= want {
				return nil, fmt.Errorf("data has more than the %d elements the shape needs", want)
			}
			tok := p.token()
			var err error
			if out, err = appendElement(out, dt, tok); err != nil {
				return nil, p.errorf("%v", err)
			}
		}
		expectValue = false
	}
}

type dataParser struct {
	b []byte
	i int
}

func (p *dataParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *dataParser) token() []byte {
	start := p.i
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ',', ']', '[', ' ', '\t', '\n', '\r':
			return p.b[start:p.i]
		}
		p.i++
	}
	return p.b[start:p.i]
}

func (p *dataParser) errorf(format string, args ...any) error {
	return fmt.Errorf("data at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

// bytesString views b as a string for strconv without copying; the string
// does not outlive the call.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func appendElement(out []byte, dt engine.DataType, tok []byte) ([]byte, error) {
	s := bytesString(tok)
	le := binary.LittleEndian
	switch dt {
	case engine.Bool:
		switch s {
		case "true", "1":
			return append(out, 1), nil
		case "false", "0":
			return append(out, 0), nil
		}
		return nil, fmt.Errorf("%s is not a BOOL (true, false, 1 or 0)", route.Quote(s))
	case engine.FP16, engine.FP32, engine.FP64:
		if len(s) > 0 && (s[0] == 'N' || s[0] == 'I' || s[0] == 'i' || s[0] == 'n' || s[0] == '+' || (s[0] == '-' && len(s) > 1 && (s[1] == 'I' || s[1] == 'i'))) {
			return nil, fmt.Errorf("%s is not a JSON number", route.Quote(s))
		}
		bits := 64
		if dt == engine.FP32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return nil, fmt.Errorf("%s is not a %s number", route.Quote(s), dt)
		}
		if dt == engine.FP16 {
			h, ok := engine.FloatToHalf(f)
			if !ok {
				return nil, fmt.Errorf("%s is not a %s number", route.Quote(s), dt)
			}
			return le.AppendUint16(out, h), nil
		}
		if dt == engine.FP32 {
			return le.AppendUint32(out, math.Float32bits(float32(f))), nil
		}
		return le.AppendUint64(out, math.Float64bits(f)), nil
	}
	bits := dt.Size() * 8
	switch dt {
	case engine.Uint8, engine.Uint16, engine.Uint32, engine.Uint64:
		v, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("%s is not a %s", route.Quote(s), dt)
		}
		return appendUint(out, v, dt.Size()), nil
	default:
		v, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("%s is not a %s", route.Quote(s), dt)
		}
		return appendUint(out, uint64(v), dt.Size()), nil
	}
}

func appendUint(out []byte, v uint64, size int) []byte {
	for i := range size {
		out = append(out, byte(v>>(8*i)))
	}
	return out
}

// appendData writes tensor elements as a flat JSON array. Non-finite floats
// have no JSON form and are written as null.
func appendData(b []byte, t engine.Tensor) []byte {
	le := binary.LittleEndian
	size := t.DataType.Size()
	b = append(b, '[')
	if t.DataType == engine.FP32 {
		// The common answer: one run through floattext, which grows b once.
		return append(floattext.AppendFloat32s(b, t.Data), ']')
	}
	for off := 0; off+size <= len(t.Data); off += size {
		if off > 0 {
			b = append(b, ',')
		}
		e := t.Data[off : off+size]
		switch t.DataType {
		case engine.Bool:
			b = strconv.AppendBool(b, e[0] != 0)
		case engine.FP16:
			// Every FP16 is a float32; its shortest float32 text reads
			// back as the same FP16.
			b = appendFloat32(b, engine.HalfToFloat(le.Uint16(e)))
		case engine.FP32:
			b = appendFloat32(b, math.Float32frombits(le.Uint32(e)))
		case engine.FP64:
			b = appendFloat64(b, math.Float64frombits(le.Uint64(e)))
		case engine.Int8:
			b = strconv.AppendInt(b, int64(int8(e[0])), 10)
		case engine.Int16:
			b = strconv.AppendInt(b, int64(int16(le.Uint16(e))), 10)
		case engine.Int32:
			b = strconv.AppendInt(b, int64(int32(le.Uint32(e))), 10)
		case engine.Int64:
			b = strconv.AppendInt(b, int64(le.Uint64(e)), 10)
		case engine.Uint8:
			b = strconv.AppendUint(b, uint64(e[0]), 10)
		case engine.Uint16:
			b = strconv.AppendUint(b, uint64(le.Uint16(e)), 10)
		case engine.Uint32:
			b = strconv.AppendUint(b, uint64(le.Uint32(e)), 10)
		case engine.Uint64:
			b = strconv.AppendUint(b, le.Uint64(e), 10)
		}
	}
	return append(b, ']')
}

// appendFloat32 writes f's shortest round-trip text (floattext: what
// strconv writes, faster), or null for a value JSON has no number for.
func appendFloat32(b []byte, f float32) []byte {
	if math.Float32bits(f)&0x7f800000 == 0x7f800000 {
		return append(b, "null"...)
	}
	return floattext.AppendFloat32(b, f)
}

// appendFloat64 is appendFloat32 for float64, through strconv: FP64
// answers are rare enough not to need their own formatter.
func appendFloat64(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
