package kserve

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/aiassist/aiassist/engine"
)

// decodeOnePass parses a KServe v2 inference header in one pass, without
// reflection: numbers go from the body bytes straight into each tensor's
// little-endian buffer. It handles the requests clients send — exact field
// names, each once, plain strings, no nulls — and nothing else: ok is false
// for any body it does not accept as it stands (an error, a field name in
// another case, an escaped string, a repeated field, ...), and the caller
// then runs the reflective decoder, whose answer (a request or its error)
// stands. So bad input gets exactly the errors it always got, and
// FuzzOnePass holds both decoders to the same requests.
func decodeOnePass(header, binary []byte) (*decodedRequest, bool) {
	s := scanner{b: header}
	out := &decodedRequest{BinaryOut: map[string]bool{}}
	if !s.lit('{') {
		return nil, false
	}
	var seen uint8
	names := map[string]bool{}
	for first := true; ; first = false {
		if s.lit('}') {
			if first {
				return nil, false // no inputs
			}
			break
		}
		if !first && !s.lit(',') {
			return nil, false
		}
		key, ok := s.str()
		if !ok || !s.lit(':') {
			return nil, false
		}
		var bit uint8
		switch string(key) {
		case "id":
			bit = 1
			id, ok := s.str()
			if !ok {
				return nil, false
			}
			out.ID = string(id)
		case "parameters":
			bit = 2
			if !s.params(func(k []byte) bool {
				if string(k) != "binary_data_output" {
					return s.skip(0)
				}
				v, ok := s.boolean()
				out.AllBinary = v
				return ok
			}) {
				return nil, false
			}
		case "inputs":
			bit = 4
			if !s.list(func() bool {
				t, ok := s.input(&binary)
				if !ok || names[t.Name] {
					return false
				}
				names[t.Name] = true
				out.Inputs = append(out.Inputs, t)
				return true
			}) {
				return nil, false
			}
		case "outputs":
			bit = 8
			if !s.list(func() bool { return s.output(out) }) {
				return nil, false
			}
		default:
			return nil, false
		}
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
	}
	s.ws()
	if s.i != len(s.b) || len(out.Inputs) == 0 || len(binary) != 0 {
		return nil, false
	}
	return out, true
}

// input parses one element of "inputs"; JSON data is parsed where it
// stands when shape and datatype come before it, as clients send them.
func (s *scanner) input(binary *[]byte) (engine.Tensor, bool) {
	var t engine.Tensor
	var seen uint8
	var rawData []byte
	binSize := int64(-1)
	n := int64(-1) // elements, once shape and datatype are known
	ok := s.object(func(key []byte) bool {
		var bit uint8
		switch string(key) {
		case "name":
			bit = 1
			v, ok := s.str()
			if !ok || len(v) == 0 {
				return false
			}
			t.Name = string(v)
		case "shape":
			bit = 2
			t.Shape = []int64{}
			if !s.list(func() bool {
				d, ok := s.dim()
				t.Shape = append(t.Shape, d)
				return ok
			}) {
				return false
			}
		case "datatype":
			bit = 4
			v, ok := s.str()
			if !ok {
				return false
			}
			dt, ok := engine.ParseDataType(string(v))
			if !ok {
				return false
			}
			t.DataType = dt
		case "parameters":
			bit = 8
			if !s.params(func(k []byte) bool {
				if string(k) != "binary_data_size" {
					return s.skip(0)
				}
				f, ok := s.float64()
				if !ok || f < 0 || f != float64(int64(f)) {
					return false
				}
				binSize = int64(f)
				return true
			}) {
				return false
			}
		case "data":
			bit = 16
			if n >= 0 {
				data, ok := s.data(t.DataType, n)
				if !ok {
					return false
				}
				t.Data = data
				break
			}
			s.ws()
			start := s.i
			if !s.skip(0) {
				return false
			}
			rawData = s.b[start:s.i]
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if seen&6 == 6 && n < 0 {
			n = elements(t.Shape)
			if n < 0 {
				return false
			}
		}
		return true
	})
	if !ok || seen&7 != 7 {
		return t, false
	}
	switch {
	case binSize >= 0:
		if seen&16 != 0 || binSize != n*int64(t.DataType.Size()) || binSize > int64(len(*binary)) {
			return t, false
		}
		t.Data, *binary = (*binary)[:binSize], (*binary)[binSize:]
	case seen&16 == 0:
		return t, false
	case rawData != nil:
		d := scanner{b: rawData}
		data, ok := d.data(t.DataType, n)
		if !ok || d.i != len(rawData) {
			return t, false
		}
		t.Data = data
	}
	return t, true
}

// elements is the product of shape, or -1 when it is more than a tensor
// may have.
func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d != 0 && n > maxTensorElements/d {
			return -1
		}
		n *= d
	}
	return n
}

// output parses one element of "outputs".
func (s *scanner) output(out *decodedRequest) bool {
	var name []byte
	binary, seen := false, uint8(0)
	ok := s.object(func(key []byte) bool {
		var bit uint8
		switch string(key) {
		case "name":
			bit = 1
			v, ok := s.str()
			if !ok || len(v) == 0 {
				return false
			}
			name = v
		case "parameters":
			bit = 2
			if !s.params(func(k []byte) bool {
				if string(k) != "binary_data" {
					return s.skip(0)
				}
				v, ok := s.boolean()
				binary = v
				return ok
			}) {
				return false
			}
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if !ok || seen&1 == 0 {
		return false
	}
	out.Outputs = append(out.Outputs, string(name))
	if binary {
		out.BinaryOut[string(name)] = true
	}
	return true
}

// scanner reads JSON from b at i. Its methods return false for anything
// they do not take, leaving i anywhere.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit skips white space and c, if c is next.
func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid
// UTF-8: what encoding/json would give unchanged.
func (s *scanner) str() ([]byte, bool) {
	if !s.lit('"') {
		return nil, false
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// object reads an object, calling field with the value's scanner position
// after each key and its colon. A key repeated is for field to refuse.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.lit(':') || !field(key) {
			return false
		}
		if s.lit('}') {
			return true
		}
		if !s.lit(',') {
			return false
		}
	}
}

// params reads a "parameters" object: a key met twice is refused, since
// encoding/json would keep only the last.
func (s *scanner) params(field func(key []byte) bool) bool {
	var keys []string
	return s.object(func(key []byte) bool {
		for _, k := range keys {
			if k == string(key) {
				return false
			}
		}
		keys = append(keys, string(key))
		return field(key)
	})
}

// list reads an array, calling item at each element. An empty array is
// fine here; its caller decides.
func (s *scanner) list(item func() bool) bool {
	if !s.lit('[') {
		return false
	}
	if s.lit(']') {
		return true
	}
	for {
		if !item() {
			return false
		}
		if s.lit(']') {
			return true
		}
		if !s.lit(',') {
			return false
		}
	}
}

// skip reads and checks any JSON value but null at the top (where a
// parameter's null would mean something else) — nulls inside are fine.
func (s *scanner) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.list(func() bool { return s.skip(depth + 1) })
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't' || c == 'f':
		_, ok := s.boolean()
		return ok
	case c == 'n':
		return depth > 0 && s.word("null")
	}
	_, ok := s.float64()
	return ok
}

func (s *scanner) word(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *scanner) boolean() (v, ok bool) {
	s.ws()
	if s.word("true") {
		return true, true
	}
	return false, s.word("false")
}

// number reads a JSON number: its mantissa digits (up to 19 of them, exact
// is false beyond) and the decimal exponent that goes with them, and
// whether it had a fraction or exponent part.
func (s *scanner) number() (n num, ok bool) {
	b, i := s.b, s.i
	n.start = i
	if i < len(b) && b[i] == '-' {
		n.neg = true
		i++
	}
	if i >= len(b) {
		return n, false
	}
	n.exact = true
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for ; i < len(b); i++ {
			d := b[i] - '0'
			if d > 9 {
				break
			}
			if n.digits < 19 {
				n.mant = n.mant*10 + uint64(d)
				n.digits++
			} else {
				n.exact = false
				n.exp++
			}
		}
	default:
		return n, false
	}
	if i < len(b) && b[i] == '.' {
		n.real = true
		i++
		start := i
		for ; i < len(b); i++ {
			d := b[i] - '0'
			if d > 9 {
				break
			}
			if n.digits < 19 {
				// Leading zeros of a fraction are not significant digits.
				n.mant = n.mant*10 + uint64(d)
				n.exp--
				if n.mant != 0 {
					n.digits++
				}
			} else {
				n.exact = false
			}
		}
		if i == start {
			return n, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		n.real = true
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start, e := i, 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == start {
			return n, false
		}
		if eneg {
			e = -e
		}
		n.exp += e
	}
	n.end = i
	s.i = i
	return n, true
}

// num is a JSON number as number reads it.
type num struct {
	neg, real, exact bool
	mant             uint64
	digits, exp      int
	start, end       int
}

var pow10f32 = [...]float32{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

var pow10f64 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// float32 is n correctly rounded: exactly when exact can, through
// strconv otherwise.
func (s *scanner) float32(n num) (float32, bool) {
	if f, ok := exact(n, pow10f32[:], 1<<24); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(bytesString(s.b[n.start:n.end]), 32)
	return float32(f), err == nil
}

// exact is n as an F when its mantissa (at most maxMant) and its power of
// ten (in pow) are both exact in F: then one multiplication or division
// rounds once, the fast path strconv takes too.
func exact[F float32 | float64](n num, pow []F, maxMant uint64) (F, bool) {
	if !n.exact || n.mant > maxMant || n.exp <= -len(pow) || n.exp >= len(pow) {
		return 0, false
	}
	f := F(n.mant)
	if n.exp < 0 {
		f /= pow[-n.exp]
	} else {
		f *= pow[n.exp]
	}
	if n.neg {
		f = -f
	}
	return f, true
}

func (s *scanner) float64() (float64, bool) {
	s.ws()
	n, ok := s.number()
	if !ok {
		return 0, false
	}
	return s.f64(n)
}

// f64 is n correctly rounded, as float32 does it for float64.
func (s *scanner) f64(n num) (float64, bool) {
	if f, ok := exact(n, pow10f64[:], 1<<53); ok {
		return f, true
	}
	f, err := strconv.ParseFloat(bytesString(s.b[n.start:n.end]), 64)
	return f, err == nil
}

// fp32Run reads a run of short FP32 elements, each followed by a comma
// with nothing between: from b[i] into out from element k on. The only
// work one element waits for from the one before is finding its comma
// (eight bytes at a time), so the parsing of neighbouring elements
// overlaps. It takes numbers of at most 7 digits with no exponent, such as
// -0.875 or 12.5: what model inputs mostly are. It stops, returning where,
// at the first element that is not one of those directly followed by ','
// (the last of an array, one within 16 bytes of the end, a long number,
// white space), which the caller's general path then reads.
func fp32Run(b []byte, i int, out []byte, k int) (int, int) {
	const ones, highs, commas = 0x0101010101010101, 0x8080808080808080, 0x2c2c2c2c2c2c2c2c
	if len(b) < 16 || k >= len(out)/4 {
		return i, k
	}
	// Bounds are checked once here, for the loop's whole range: every
	// load is within the 16 bytes from i, with i at most len(b)-16, and
	// every store within out.
	base, last, elems := unsafe.Pointer(unsafe.SliceData(b)), len(b)-16, len(out)/4
	dst := unsafe.Pointer(unsafe.SliceData(out))
	for k < elems && i <= last {
		p := unsafe.Add(base, i)
		x := load64(p, 0) ^ commas
		comma := (x - ones) &^ x & highs // the first comma's byte, exactly
		var length int
		if comma != 0 {
			length = bits.TrailingZeros64(comma) / 8
		} else {
			x = load64(p, 8) ^ commas
			if comma = (x - ones) &^ x & highs; comma == 0 {
				break
			}
			length = 8 + bits.TrailingZeros64(comma)/8
		}
		// The number is b[i : i+length]: an optional sign, then at most
		// eight bytes of digits and one point, all in t.
		neg := 0 // no branch: signs alternate unpredictably
		if *(*byte)(p) == '-' {
			neg = 1
		}
		text := length - neg
		if text == 0 || text > 8 {
			break
		}
		t := load64(p, neg)
		n := digitRun(t)
		if n == 0 || n > 7 || (n > 1 && byte(t) == '0') {
			break
		}
		// The digits after the point are moved down next to those before
		// it, so that one conversion reads them all; a fraction is read
		// whether or not there is one (frac is then 0), as branching on
		// it would guess wrong as often as right.
		frac := max(text-n-1, 0)
		if n < text && byte(t>>(8*n)) != '.' {
			break
		}
		all := n + frac
		merged := (t&(1<<(8*n)-1) | t>>(8*(n+1))<<(8*n)) & (1<<(8*all) - 1)
		if all > 7 || digitRun(merged) != all || (n < text && frac == 0) {
			break
		}
		// A multiplication by 10^-frac in float64 then rounded to float32
		// is the correctly rounded quotient for up to 7 digits: its error
		// (below 2^-52, relative) is less than any such quotient's
		// distance from a float32 rounding boundary (at least 2^-48.25).
		f := float32(float64(digitsValue(merged, all)) * pow10neg[frac&7])
		store32(unsafe.Add(dst, 4*k), math.Float32bits(f)|uint32(neg)<<31)
		k++
		i += length + 1
	}
	return i, k
}

// load64 is the little-endian uint64 at p+off, which must be readable.
func load64(p unsafe.Pointer, off int) uint64 {
	v := *(*uint64)(unsafe.Add(p, off))
	if bigEndian {
		v = bits.ReverseBytes64(v)
	}
	return v
}

// store32 writes v little-endian at p, which must be writable.
func store32(p unsafe.Pointer, v uint32) {
	if bigEndian {
		v = bits.ReverseBytes32(v)
	}
	*(*uint32)(p) = v
}

var bigEndian = binary.NativeEndian.Uint16([]byte{1, 0}) != 1

var pow10neg = [...]float64{1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7}

var pow10u32 = [...]uint32{1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8}

// digitRun is how many of w's eight bytes, first byte lowest, are ASCII
// digits before the first that is not. A byte is a digit when its high
// nibble is 3 and adding 6 keeps it so; a carry out of a byte of 0xfa or
// more can only spoil bytes after it, past the first non-digit.
func digitRun(w uint64) int {
	const (
		high  = 0xf0f0f0f0f0f0f0f0
		three = 0x3030303030303030
		six   = 0x0606060606060606
	)
	bad := (w&high ^ three) | ((w+six)&high ^ three)
	return bits.TrailingZeros64(bad) / 8
}

// digitsValue is the number written by the first n (1 to 8) bytes of w,
// all digits: shifted so that they are the last of eight digits, then
// combined pairwise, by fours and by eights in three multiplications.
func digitsValue(w uint64, n int) uint32 {
	v := (w & 0x0f0f0f0f0f0f0f0f) << (8 * (8 - n))
	v = v*10 + v>>8
	v = ((v&0x000000ff000000ff)*(100+1000000<<32) + (v>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return uint32(v)
}

// integer is n as an integer of bits bits, signed or not, when it is one.
func (s *scanner) integer(n num, bits int, signed bool) (uint64, bool) {
	if n.real {
		return 0, false
	}
	if !n.exact { // more than 19 digits: strconv says whether it fits
		text := bytesString(s.b[n.start:n.end])
		if signed {
			v, err := strconv.ParseInt(text, 10, bits)
			return uint64(v), err == nil
		}
		v, err := strconv.ParseUint(text, 10, bits)
		return v, err == nil
	}
	limit := uint64(1)<<(bits-1) - 1
	if !signed {
		if n.neg {
			return 0, false
		}
		limit = limit<<1 | 1
	} else if n.neg {
		limit++
	}
	if n.mant > limit {
		return 0, false
	}
	if n.neg {
		return -n.mant, true
	}
	return n.mant, true
}

// dim reads one shape dimension, an int64 not below zero.
func (s *scanner) dim() (int64, bool) {
	s.ws()
	n, ok := s.number()
	if !ok {
		return 0, false
	}
	v, ok := s.integer(n, 64, true)
	return int64(v), ok && int64(v) >= 0
}

// data reads a "data" array, flat or nested up to 32 deep, of exactly n
// elements of dt, into a new buffer.
func (s *scanner) data(dt engine.DataType, n int64) ([]byte, bool) {
	size := dt.Size()
	s.ws()
	if n > int64(len(s.b)-s.i) { // every element needs at least one byte
		return nil, false
	}
	out := make([]byte, int(n)*size)
	le := binary.LittleEndian
	depth, k := 0, 0
	for {
		// A value or an array.
		s.ws()
		if s.i >= len(s.b) {
			return nil, false
		}
		if s.b[s.i] == '[' {
			if depth++; depth > 32 {
				return nil, false
			}
			s.i++
			continue
		}
		if depth == 0 || int64(k) >= n {
			return nil, false
		}
		if dt == engine.FP32 {
			if i, kk := fp32Run(s.b, s.i, out, k); kk > k {
				s.i, k = i, kk
				continue
			}
		}
		e := out[k*size : (k+1)*size]
		k++
		if dt == engine.Bool {
			switch {
			case s.word("true"), s.word("1"):
				e[0] = 1
			case s.word("false"), s.word("0"):
			default:
				return nil, false
			}
		} else {
			num, ok := s.number()
			if !ok {
				return nil, false
			}
			switch dt {
			case engine.FP32:
				f, ok := s.float32(num)
				if !ok {
					return nil, false
				}
				le.PutUint32(e, math.Float32bits(f))
			case engine.FP64:
				f, ok := s.f64(num)
				if !ok {
					return nil, false
				}
				le.PutUint64(e, math.Float64bits(f))
			case engine.FP16:
				f, ok := s.f64(num)
				if !ok {
					return nil, false
				}
				h, ok := engine.FloatToHalf(f)
				if !ok {
					return nil, false
				}
				le.PutUint16(e, h)
			default:
				signed := dt != engine.Uint8 && dt != engine.Uint16 && dt != engine.Uint32 && dt != engine.Uint64
				v, ok := s.integer(num, size*8, signed)
				if !ok {
					return nil, false
				}
				for j := range e {
					e[j] = byte(v >> (8 * j))
				}
			}
		}
		// Then ',' or as many ']' as close.
		for {
			s.ws()
			if s.i >= len(s.b) {
				return nil, false
			}
			c := s.b[s.i]
			s.i++
			if c == ',' {
				break
			}
			if c != ']' {
				return nil, false
			}
			if depth--; depth == 0 {
				return out, int64(k) == n
			}
		}
	}
}
