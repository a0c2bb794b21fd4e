package floattext

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// check fails t when AppendFloat32 and strconv disagree on the float32
// with bits u.
func check(t testing.TB, u uint32) {
	f := math.Float32frombits(u)
	want := strconv.AppendFloat(nil, float64(f), 'g', -1, 32)
	got := AppendFloat32(nil, f)
	if string(got) != string(want) {
		t.Fatalf("bits %#08x: got %q, strconv %q", u, got, want)
	}
}

// TestSample compares with strconv on four million random bit patterns
// and on every float32 next to a power of two or of ten, the boundaries
// where the interval and the exponent choice change.
func TestSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 4_000_000
	if testing.Short() {
		n = 1_000_000
	}
	for range n {
		check(t, r.Uint32())
	}
	for e := uint32(0); e < 256; e++ {
		for _, frac := range []uint32{0, 1, 2, 3, 1<<23 - 1, 1<<23 - 2, 1 << 22} {
			check(t, e<<23|frac)
			check(t, 1<<31|e<<23|frac)
		}
	}
	for k := -45; k <= 38; k++ {
		p := float32(math.Pow(10, float64(k)))
		u := math.Float32bits(p)
		for d := uint32(0); d < 64 && u >= d; d++ {
			check(t, u-d)
			check(t, u+d)
		}
	}
	for v := range 100_000 { // small integers and their halves
		check(t, math.Float32bits(float32(v)))
		check(t, math.Float32bits(float32(v)+0.5))
	}
}

// joined is what AppendFloat32s must append for data: each element as
// strconv writes it, null for NaN and infinities, comma-separated.
func joined(b []byte, data []byte) []byte {
	for i := 0; i+4 <= len(data); i += 4 {
		if i > 0 {
			b = append(b, ',')
		}
		f := math.Float32frombits(binary.LittleEndian.Uint32(data[i:]))
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return b
}

// TestAppendFloat32s: runs of every length up to 40 mixing every form
// (zeros, nulls, exponents, plain decimals, small integers), appended
// after existing bytes to a buffer with no spare capacity and to one
// with exactly the room the text needs, so that a store past what is
// grown would show (under -race, or as a corrupted prefix).
func TestAppendFloat32s(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	forms := []func() uint32{
		func() uint32 { return 0 },
		func() uint32 { return 1 << 31 },
		func() uint32 { return 0x7fc00000 },                         // NaN
		func() uint32 { return 0xff800000 },                         // -Inf
		func() uint32 { return r.Uint32() },                         // mostly exponent form
		func() uint32 { return 0x3f000000 | r.Uint32()&0x807fffff }, // ±0.5 to 1
		func() uint32 { return math.Float32bits(float32(r.IntN(2_000_000))) },
		func() uint32 { return math.Float32bits(float32(r.IntN(100_000)) / 1e4) },
	}
	for n := range 41 {
		for range 50 {
			data := make([]byte, 0, 4*n+3)
			for range n {
				data = binary.LittleEndian.AppendUint32(data, forms[r.IntN(len(forms))]())
			}
			data = append(data, make([]byte, r.IntN(4))...) // a partial element, ignored
			prefix := []byte("[1,")
			want := joined(append([]byte(nil), prefix...), data)
			got := AppendFloat32s(append([]byte(nil), prefix...), data)
			if string(got) != string(want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			roomy := append(make([]byte, 0, len(want)+16*n+maxWrite), prefix...)
			if got := AppendFloat32s(roomy, data); string(got) != string(want) {
				t.Fatalf("with room: got %q, want %q", got, want)
			}
		}
	}
}

func FuzzAppendFloat32s(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0xc0, 0x7f, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		want := joined(nil, data)
		if got := AppendFloat32s(nil, data); string(got) != string(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// TestExhaustive compares all 2^32 float32s with strconv when
// FLOATTEXT_EXHAUSTIVE=1 (several minutes on two cores).
func TestExhaustive(t *testing.T) {
	if os.Getenv("FLOATTEXT_EXHAUSTIVE") != "1" {
		t.Skip("set FLOATTEXT_EXHAUSTIVE=1 to compare all 2^32 float32s with strconv")
	}
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []uint32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var want, got []byte
			for u := uint64(w); u < 1<<32; u += uint64(workers) {
				f := math.Float32frombits(uint32(u))
				want = strconv.AppendFloat(want[:0], float64(f), 'g', -1, 32)
				got = AppendFloat32(got[:0], f)
				if string(got) != string(want) {
					mu.Lock()
					bad = append(bad, uint32(u))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d float32s differ from strconv, first %#08x", len(bad), bad[0])
	}
}

// TestPow10 checks the table against floorLog2Pow10 and a second
// computation: each entry has its top bit set and is 10^K's 64 leading
// bits plus one.
func TestPow10(t *testing.T) {
	for K := minPow10; K <= maxPow10; K++ {
		g := pow10[K-minPow10]
		if g>>63 != 1 {
			t.Fatalf("10^%d: top bit not set in %#x", K, g)
		}
		// g-1 ≤ 10^K × 2^(63−floorLog2Pow10(K)) < g
		x := new(big.Float).SetPrec(1000).SetInt64(1)
		for range abs(K) {
			if K > 0 {
				x.Mul(x, big.NewFloat(10))
			} else {
				x.Quo(x, big.NewFloat(10))
			}
		}
		x.SetMantExp(x, 63-floorLog2Pow10(K))
		lo := new(big.Float).SetUint64(g - 1)
		hi := new(big.Float).SetUint64(g)
		if x.Cmp(lo) < 0 || x.Cmp(hi) >= 0 {
			t.Fatalf("10^%d: %#x is not its leading bits plus one (%s)", K, g, x.Text('g', 30))
		}
	}
}

func FuzzAppendFloat32(f *testing.F) {
	f.Add(uint32(0x3f800000))
	f.Add(uint32(0x00000001))
	f.Add(uint32(0x7f7fffff))
	f.Fuzz(func(t *testing.T, u uint32) { check(t, u) })
}

var sink []byte

func BenchmarkAppendFloat32(b *testing.B) {
	values := make([]float32, 1024)
	for i := range values {
		u := uint32(i*7+3) | uint32(i*7+4)<<8 | uint32(i*7+5)<<16 | uint32(i*7+6)<<24
		values[i] = math.Float32frombits(u)
	}
	buf := make([]byte, 0, 16*1024)
	b.Run("floattext", func(b *testing.B) {
		for range b.N {
			buf = buf[:0]
			for _, v := range values {
				buf = AppendFloat32(buf, v)
			}
		}
		sink = buf
	})
	data := make([]byte, 0, 4*len(values))
	for _, v := range values {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	b.Run("floattext-run", func(b *testing.B) {
		for range b.N {
			buf = AppendFloat32s(buf[:0], data)
		}
		sink = buf
	})
	b.Run("strconv", func(b *testing.B) {
		for range b.N {
			buf = buf[:0]
			for _, v := range values {
				buf = strconv.AppendFloat(buf, float64(v), 'g', -1, 32)
			}
		}
		sink = buf
	})
}
