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
	"unsafe"
)

// AppendFloat32 appends f's shortest round-trip text, formatted as
// strconv's 'g' with precision -1 formats it (exponent form below 1e-4
// and from 1e6 up). NaN and infinities are not JSON numbers: they are
// written as strconv writes them ("NaN", "+Inf", "-Inf") and the caller
// decides what to do with them.
func AppendFloat32(b []byte, f float32) []byte {
	u := math.Float32bits(f)
	if u&expMask == expMask {
		return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	var e [4]byte
	binary.LittleEndian.PutUint32(e[:], u)
	return AppendFloat32s(b, e[:])
}

const (
	expMask = 0x7f800000
	// The most bytes one element's stores reach past its start: 15 of
	// text and a comma are kept, 8-byte stores of digits go further.
	maxWrite = 32
)

// AppendFloat32s appends the little-endian float32s of data (a tensor's
// bytes; a trailing part of an element is ignored) as the elements of a
// JSON array, comma-separated: each as AppendFloat32 writes it, and null
// for NaN and infinities. It is one loop with nothing called, so that no
// call makes the compiler spill the loop's state: b grows once, and the
// text is stored through a pointer into b's spare capacity, 8 bytes at a
// time.
func AppendFloat32s(b []byte, data []byte) []byte {
	count := len(data) / 4
	if count == 0 {
		return b
	}
	// An element's text and comma take at most 16 bytes, and its stores
	// reach at most maxWrite bytes past its start: every store below is
	// inside the capacity grown here.
	b = slices.Grow(b, 16*count+maxWrite)
	start := unsafe.Pointer(unsafe.SliceData(b))
	p := unsafe.Add(start, len(b))
	le := binary.LittleEndian
	data = data[:4*count]
	for off := 0; off < len(data); off += 4 {
		u := le.Uint32(data[off:])
		neg := uintptr(u >> 31)
		if u<<1-1 >= 0xfeffffff { // zero, or not finite
			if u<<1 == 0 {
				store1(p, '-')
				p = unsafe.Add(p, neg)
				store1(p, '0')
				p = unsafe.Add(p, 1)
			} else {
				store4(p, 0x6c6c756e) // "null"
				p = unsafe.Add(p, 4)
			}
			store1(p, ',')
			p = unsafe.Add(p, 1)
			continue
		}
		// The sign is written always and kept when negative: signs of
		// neighbouring values are as unpredictable as a branch can be.
		store1(p, '-')
		p = unsafe.Add(p, neg)
		// Schubfach: the shortest decimal d×10^k inside the float's
		// rounding interval, the closest one when several are, as strconv
		// chooses. d may end in zeros.
		frac := u & (1<<23 - 1)
		exp := int(u>>23) & 0xff
		c, q := 1<<23|frac, exp-150
		if exp == 0 {
			c, q = frac, -149
		}
		var d uint32
		var k int
		if -23 <= q && q <= 0 && c&(1<<uint(-q)-1) == 0 {
			d = c >> uint(-q) // a small integer is its own shortest decimal
		} else {
			odd := c & 1
			lowerCloser := b2u(frac == 0 && exp > 1)
			cbl := 4*c - 2 + lowerCloser
			cb := 4 * c
			cbr := 4*c + 2
			// k = floor(log10(2^q)), or floor(log10(3/4 × 2^q)) when the
			// lower neighbour is closer; exact over the float32 range.
			k = (q*1262611 - int(lowerCloser)*524031) >> 22
			h := uint(q+floorLog2Pow10(-k)+1) & 31 // 1 to 4
			g := pow10[-k-minPow10]
			vbl := roundToOdd(g, cbl<<h)
			vb := roundToOdd(g, cb<<h)
			vbr := roundToOdd(g, cbr<<h)
			// An even significand's interval includes its ends.
			lower := vbl + odd
			upper := vbr - odd
			// Which candidate wins depends on the digits, so it is
			// unpredictable: the choice is made with selects (conditional
			// moves), not branches.
			s := vb / 4
			// Both s and s+1 fit: the closer. An exact tie goes to the
			// even one, except at a power of two, where strconv's
			// Dragonbox rounds it up.
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
			k += int(shorter)
		}
		// The digits of d×10^k. d scaled to nine digits puts its first
		// one in top and the next eight in w, the first in w's lowest
		// byte; d's trailing zeros (and the scaling's) are the zero bytes
		// at the top of w, counted rather than divided out.
		all := digitCount(d)
		d9 := d * pow10u32[(9-all)&15]
		top := d9 / 1e8
		w := digits8(d9 - top*1e8)
		nd := 9 - bits.LeadingZeros64(w)>>3 // significant digits
		w += 0x3030303030303030
		first := byte('0' + top)
		dp := all + k // digits before the decimal point
		switch e := dp - 1; {
		case e < -4 || e >= 6: // d.ddde±XX
			store1(p, first)
			store1(unsafe.Add(p, 1), '.')
			store8(unsafe.Add(p, 2), w)
			l := nd + b2i(nd > 1) // no point after a lone digit
			m := e >> 63          // −1 for a negative exponent, else 0
			e = (e ^ m) - m       // float32's stay within ±45
			store4(unsafe.Add(p, l), 'e'|uint32('+'-2*m)<<8|uint32(pairs[2*e])<<16|uint32(pairs[2*e+1])<<24)
			p = unsafe.Add(p, l+4)
		case dp <= 0: // 0.000ddd
			store8(p, 0x3030303030302e30) // "0.000000"
			z := 2 - dp
			store1(unsafe.Add(p, z), first)
			store8(unsafe.Add(p, z+1), w)
			p = unsafe.Add(p, z+nd)
		case dp >= nd: // ddd000, at most 6 digits, its zeros in w
			store1(p, first)
			store8(unsafe.Add(p, 1), w)
			p = unsafe.Add(p, dp)
		default: // dd.ddd: the digits, then those after the point moved up
			store1(p, first)
			store8(unsafe.Add(p, 1), w)
			store1(unsafe.Add(p, dp), '.')
			store8(unsafe.Add(p, dp+1), w>>uint(8*(dp-1)&63))
			p = unsafe.Add(p, nd+1)
		}
		store1(p, ',')
		p = unsafe.Add(p, 1)
	}
	// All but the last comma.
	return b[:uintptr(p)-uintptr(start)-1]
}

// roundToOdd is g×cp/2^64 rounded to odd: its integer part, with the
// lowest bit set when a fraction (beyond g's own excess) is left.
func roundToOdd(g uint64, cp uint32) uint32 {
	hi, lo := bits.Mul64(g, uint64(cp))
	return uint32(hi) | b2u(uint32(lo>>32) > 1)
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
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

// digits8 is x < 10^8 as eight digits (0 to 9, not yet ASCII), the
// first in the lowest byte: split in two halves of four digits in 32-bit
// lanes, each into two pairs in 16-bit lanes, each into two digits in
// bytes. The quotients are
// multiplications by reciprocals, exact for these ranges (x/100 for
// x < 43699, x/10 for x < 179).
func digits8(x uint32) uint64 {
	h := x / 10000
	v := uint64(h) | uint64(x-h*10000)<<32
	q := (v * 5243 >> 19) & 0x0000007f0000007f
	v = q | (v-q*100)<<16
	q = (v * 103 >> 10) & 0x000f000f000f000f
	v = q | (v-q*10)<<8
	return v
}

// digitCount is the number of decimal digits of d > 0.
func digitCount(d uint32) int {
	t := (bits.Len32(d) * 1233) >> 12 // floor(log10(2^Len)), a lower bound
	if d >= pow10u32[t] {
		t++
	}
	return t
}

// pow10u32 has 16 entries so that an index masked with 15 needs no
// bounds check.
var pow10u32 = [16]uint32{1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

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
