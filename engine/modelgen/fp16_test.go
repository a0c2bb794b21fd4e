package modelgen

import (
	"math"
	"testing"
)

// TestHalf: every float16 widens and narrows back to itself, and a float32
// halfway between two neighbours rounds to the even one.
func TestHalf(t *testing.T) {
	for h := range 1 << 16 {
		f := HalfToFloat(uint16(h))
		if math.IsNaN(float64(f)) {
			if FloatToHalf(f)&0x7c00 != 0x7c00 || FloatToHalf(f)&0x3ff == 0 {
				t.Fatalf("NaN %#04x narrows to %#04x", h, FloatToHalf(f))
			}
			continue
		}
		if got := FloatToHalf(f); got != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, got)
		}
		if h&0x7c00 == 0x7c00 || h&0x7fff == 0x7bff {
			continue // Inf, and the largest finite one: no neighbour above
		}
		next := HalfToFloat(uint16(h) + 1)
		mid := float32((float64(f) + float64(next)) / 2)
		want := uint16(h)
		if h&1 == 1 {
			want = uint16(h) + 1
		}
		if h&0x8000 == 0 || h&0x7fff != 0 { // skip -0, whose neighbour is below
			if got := FloatToHalf(mid); f >= 0 && got != want {
				t.Fatalf("halfway between %g and %g: %#04x, want %#04x", f, next, got, want)
			}
		}
	}
	if FloatToHalf(1e6) != 0x7c00 || FloatToHalf(-1e6) != 0xfc00 || FloatToHalf(1e-9) != 0 {
		t.Fatal("out of range values")
	}
}
