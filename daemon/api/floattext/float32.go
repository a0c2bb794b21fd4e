// Package floattext writes float32 values as JSON number text: the
// shortest decimal that reads back as the same float32, byte for byte what
// strconv.AppendFloat(b, float64(f), 'g', -1, 32) writes, about twice as
// fast (BenchmarkAppendFloat32). Tensor answers are thousands of float32s,
// and strconv's general path (a decimal struct and a format switch around
// its Dragonbox) costs most of an answer's encoding time.
//
// The digits come from Giulietti's Schubfach ("The Schubfach way to render
// doubles", 2020) in its 32-bit form: three multiplications by one 64-bit
// power of ten, no loop and no big numbers. The test compares every
// float32 of a large sample with strconv (and all 2^32 of them when
// FLOATTEXT_EXHAUSTIVE=1).
package floattext

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
)

// AppendFloat32 appends f's shortest round-trip text, formatted as
// strconv's 'g' with precision -1 formats it (exponent form below 1e-4
// and from 1e6 up). NaN and infinities are not JSON numbers: they are
// written as strconv writes them ("NaN", "+Inf", "-Inf") and the caller
// decides what to do with them.
func AppendFloat32(b []byte, f float32) []byte {
	u := math.Float32bits(f)
	frac := u & (1<<23 - 1)
	exp := int(u>>23) & 0xff
	if exp == 0xff {
		return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	neg := int(u >> 31)
	if exp == 0 && frac == 0 {
		if neg != 0 {
			return append(b, "-0"...)
		}
		return append(b, '0')
	}
	d, k := shortest(frac, exp)
	for d%10 == 0 {
		d /= 10
		k++
	}
	return appendDecimal(b, neg, d, k)
}

// shortest is Schubfach for a finite non-zero float32 given as its
// fraction and biased exponent: the shortest decimal d×10^k inside the
// float's rounding interval, the closest one when several are, as strconv
// chooses. d may end in zeros.
func shortest(frac uint32, exp int) (d uint32, k int) {
	var c uint32
	var q int
	if exp != 0 {
		c = 1<<23 | frac
		q = exp - 150
		// Small integers are their own shortest decimal.
		if -23 <= q && q <= 0 && c&(1<<-q-1) == 0 {
			return c >> -q, 0
		}
	} else {
		c = frac
		q = -149
	}
	odd := c & 1
	lowerCloser := uint32(0)
	if frac == 0 && exp > 1 {
		lowerCloser = 1
	}
	cbl := 4*c - 2 + lowerCloser
	cb := 4 * c
	cbr := 4*c + 2
	// k = floor(log10(2^q)), or floor(log10(3/4 × 2^q)) when the lower
	// neighbour is closer; exact over the float32 range.
	k = (q*1262611 - int(lowerCloser)*524031) >> 22
	h := q + floorLog2Pow10(-k) + 1
	g := pow10[-k-minPow10]
	vbl := roundToOdd(g, cbl<<h)
	vb := roundToOdd(g, cb<<h)
	vbr := roundToOdd(g, cbr<<h)
	// An even significand's interval includes its ends.
	lower := vbl + odd
	upper := vbr - odd
	// Which candidate wins depends on the digits, so it is unpredictable:
	// the choice is made with selects (conditional moves), not branches.
	s := vb / 4
	// Both s and s+1 fit: the closer. An exact tie goes to the even one,
	// except at a power of two, where strconv's Dragonbox rounds it up.
	mid := 4*s + 2
	d = s + (b2u(vb > mid) | b2u(vb == mid)&(s&1|lowerCloser))
	// Exactly one of s and s+1 fits: that one.
	uIn := b2u(lower <= 4*s)
	wIn := b2u(4*s+4 <= upper)
	m := -(uIn ^ wIn) // all ones when exactly one fits
	d = (s+wIn)&m | d&^m
	// One digit fewer, when exactly one of its two candidates fits.
	sp := s / 10
	upIn := b2u(lower <= 40*sp)
	wpIn := b2u(40*sp+40 <= upper)
	shorter := b2u(s >= 10) & (upIn ^ wpIn)
	m = -shorter
	d = (sp+wpIn)&m | d&^m
	return d, k + int(shorter)
}

// roundToOdd is g×cp/2^64 rounded to odd: its integer part, with the
// lowest bit set when a fraction (beyond g's own excess) is left.
func roundToOdd(g uint64, cp uint32) uint32 {
	hi, lo := bits.Mul64(g, uint64(cp))
	return uint32(hi) | b2u(uint32(lo>>32) > 1)
}

func b2u(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

// floorLog2Pow10 is floor(log2(10^e)), exact for |e| ≤ 1233.
func floorLog2Pow10(e int) int { return (e * 1741647) >> 19 }

// The powers of ten 10^K for K in [minPow10, maxPow10], the range float32
// needs, each as the 64 most significant bits plus one:
// floor(10^K × 2^(63−floor(log2 10^K))) + 1.
const (
	minPow10 = -31
	maxPow10 = 45
)

var pow10 = func() (t [maxPow10 - minPow10 + 1]uint64) {
	ten := big.NewInt(10)
	for K := minPow10; K <= maxPow10; K++ {
		p := new(big.Int).Exp(ten, big.NewInt(int64(abs(K))), nil)
		var g *big.Int
		if K >= 0 {
			// 10^K shifted so that its top bit is bit 63.
			shift := 63 - (p.BitLen() - 1)
			if shift >= 0 {
				g = new(big.Int).Lsh(p, uint(shift))
			} else {
				g = new(big.Int).Rsh(p, uint(-shift))
			}
		} else {
			// 2^(63+BitLen) / 10^-K: floor(log2 10^K) = −BitLen(10^−K).
			num := new(big.Int).Lsh(big.NewInt(1), uint(63+p.BitLen()))
			g = num.Quo(num, p)
		}
		t[K-minPow10] = g.Uint64() + 1
	}
	return t
}()

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// appendDecimal writes d×10^k (d > 0, no trailing zeros) as strconv's
// shortest 'g' does: d.ddde±XX when the decimal exponent is below −4 or
// at least 6, plain decimal otherwise. The digits are made eight at a
// time in one register and stored eight bytes at a time into b's spare
// capacity (at most 15 bytes are kept, up to 24 written).
func appendDecimal(b []byte, neg int, d uint32, k int) []byte {
	n := len(b)
	b = slices.Grow(b, 32)
	// The sign is written always and kept when negative: signs of
	// neighbouring values are as unpredictable as a branch can be.
	b[:n+1][n] = '-'
	n += neg
	out := b[n : n+24]
	nd := digitCount(d)
	// The digits, first one lowest, as nine zero-padded digits in hi:lo
	// shifted down past the padding: lo holds the first eight, hi the
	// ninth.
	top := d / 1e8
	w := digits8(d - top*1e8)
	sh := uint(8 * (9 - nd)) // 0 to 64
	lo := (uint64('0'+top)|w<<8)>>sh | (w>>56)<<(64-sh)
	hi := (w >> 56) >> sh
	le := binary.LittleEndian
	dp := nd + k // digits before the decimal point
	if e := dp - 1; e < -4 || e >= 6 {
		out[0] = byte(lo)
		w := 1
		if nd > 1 {
			out[1] = '.'
			le.PutUint64(out[2:], lo>>8|hi<<56)
			w = nd + 1
		}
		m := e >> 63 // −1 for a negative exponent, else 0
		e = (e ^ m) - m
		// float32's decimal exponents stay within ±45.
		out[w] = 'e'
		out[w+1] = byte('+' - 2*m) // '+' or '-'
		out[w+2] = pairs[2*e]
		out[w+3] = pairs[2*e+1]
		return b[:n+w+4]
	}
	switch {
	case dp <= 0: // 0.000ddd
		le.PutUint64(out, 0x3030303030302e30) // "0.000000"
		z := 2 - dp
		le.PutUint64(out[z:], lo)
		out[z+8] = byte(hi)
		return b[:n+z+nd]
	case dp >= nd: // ddd000, at most 6 digits
		le.PutUint64(out, lo)
		le.PutUint64(out[nd:], 0x3030303030303030)
		return b[:n+dp]
	default: // dd.ddd
		le.PutUint64(out, lo)
		out[dp] = '.'
		s := uint(8 * dp) // 8 to 48
		le.PutUint64(out[dp+1:], lo>>s|hi<<(64-s))
		out[dp+9] = byte(hi >> s)
		return b[:n+nd+1]
	}
}

// digits8 is x < 10^8 as eight ASCII digits, the first in the lowest
// byte: split in two halves of four digits in 32-bit lanes, each into two
// pairs in 16-bit lanes, each into two digits in bytes. The quotients are
// multiplications by reciprocals, exact for these ranges (x/100 for
// x < 43699, x/10 for x < 179).
func digits8(x uint32) uint64 {
	h := x / 10000
	v := uint64(h) | uint64(x-h*10000)<<32
	q := (v * 5243 >> 19) & 0x0000007f0000007f
	v = q | (v-q*100)<<16
	q = (v * 103 >> 10) & 0x000f000f000f000f
	v = q | (v-q*10)<<8
	return v + 0x3030303030303030
}

// digitCount is the number of decimal digits of d > 0.
func digitCount(d uint32) int {
	t := (bits.Len32(d) * 1233) >> 12 // floor(log10(2^Len)), a lower bound
	if d >= pow10u32[t] {
		t++
	}
	return t
}

var pow10u32 = [...]uint32{1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

const pairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"
