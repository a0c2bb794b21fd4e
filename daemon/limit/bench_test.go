package limit

import (
	"net/netip"
	"sync/atomic"
	"testing"
)

// The benchmarks use rates no request reaches, so every Admit is admitted
// and measures the work of a request that passes: the clock, the buckets,
// the slot, Release and Charge.
var (
	huge     = Rate{PerSecond: 1e12, Burst: 1 << 30}
	fullOpts = Options{
		Global: huge,
		PerIP:  huge,
		Classes: map[string]Class{
			"gold": {Requests: huge, TokensPerMinute: 1 << 30, MaxConcurrent: 1 << 20},
		},
	}
)

func benchAdmit(b *testing.B, opts Options, req func(i int) Request) {
	l := mustNew(b, opts, nil)
	reqs := make([]Request, 1024)
	for i := range reqs {
		reqs[i] = req(i)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tk, ref := l.Admit(reqs[i&1023])
			if ref != nil {
				b.Fatal(ref)
			}
			tk.Charge(100)
			tk.Release()
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 97
			for pb.Next() {
				tk, ref := l.Admit(reqs[i&1023])
				if ref != nil {
					b.Error(ref)
					return
				}
				tk.Charge(100)
				tk.Release()
				i++
			}
		})
	})
}

func clientIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }

func BenchmarkAdmit(b *testing.B) {
	b.Run("none", func(b *testing.B) {
		benchAdmit(b, Options{}, func(i int) Request { return Request{IP: clientIP(i)} })
	})
	b.Run("global", func(b *testing.B) {
		benchAdmit(b, Options{Global: huge}, func(i int) Request { return Request{IP: clientIP(i)} })
	})
	// All three limits configured: an authenticated request meets the
	// global and the class limits, an unauthenticated one the global and
	// the per-IP limits (1024 client addresses).
	b.Run("global+class", func(b *testing.B) {
		benchAdmit(b, fullOpts, func(int) Request { return gold })
	})
	b.Run("global+ip", func(b *testing.B) {
		benchAdmit(b, fullOpts, func(i int) Request { return Request{IP: clientIP(i)} })
	})
	b.Run("global+class+ip mixed", func(b *testing.B) {
		benchAdmit(b, fullOpts, func(i int) Request {
			if i%2 == 0 {
				return gold
			}
			return Request{IP: clientIP(i)}
		})
	})
}

// BenchmarkHeaders is the cost of the six rate-limit headers of an
// admitted request.
func BenchmarkHeaders(b *testing.B) {
	l := mustNew(b, fullOpts, nil)
	tk, _ := l.Admit(gold)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tk.VisitHeaders(func(name string, value []byte) { n += len(value) })
	}
}
