package gate

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// benchCheck runs Check on one request per iteration and reports the
// median and 99th percentile besides the mean.
func benchCheck(b *testing.B, g *Gate, req Request) {
	b.Helper()
	if _, r := g.Check(req); r != nil {
		b.Fatalf("refused: %v", r)
	}
	b.ReportAllocs()
	times := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		start := time.Now()
		_, r := g.Check(req)
		d := time.Since(start)
		if r != nil {
			b.Fatal(r)
		}
		if len(times) < cap(times) {
			times = append(times, d)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkAuth is the gate's cost per request: screening, IP list,
// authentication and ACL on a small chat request.
func BenchmarkAuth(b *testing.B) {
	k := keys()
	f := newFixture(b, nil)
	// Fifty configured keys, as a mid-size deployment has: the lookup
	// compares them all.
	var many []Key
	for i := 0; i < 50; i++ {
		many = append(many, Key{Name: "k" + strconv.Itoa(i), Hash: HashKey(NewKey())})
	}
	f50 := newFixture(b, func(o *Options, _ *fixture) { o.Keys = append(o.Keys, many...) })
	open := newFixture(b, func(o *Options, _ *fixture) { o.Keys, o.JWT = nil, nil })

	b.Run("open", func(b *testing.B) { benchCheck(b, open.g, request()) })
	b.Run("key", func(b *testing.B) { benchCheck(b, f.g, request(apiKey(f.keys["team-a-2026q4"]))) })
	b.Run("key-bearer", func(b *testing.B) { benchCheck(b, f.g, request(bearer(f.keys["team-a-2026q4"]))) })
	b.Run("key-56-configured", func(b *testing.B) { benchCheck(b, f50.g, request(apiKey(f50.keys["team-a-2026q4"]))) })
	b.Run("jwt-hs256", func(b *testing.B) {
		benchCheck(b, f.g, request(bearer(sign(b, jwt.SigningMethodHS256, "", claims(nil), k.hs))))
	})
	b.Run("jwt-es256", func(b *testing.B) {
		benchCheck(b, f.g, request(bearer(sign(b, jwt.SigningMethodES256, "ec1", claims(nil), k.ec))))
	})
	b.Run("jwt-eddsa", func(b *testing.B) {
		benchCheck(b, f.g, request(bearer(sign(b, jwt.SigningMethodEdDSA, "ed1", claims(nil), k.ed))))
	})
	b.Run("jwt-rs256", func(b *testing.B) {
		benchCheck(b, f.g, request(bearer(sign(b, jwt.SigningMethodRS256, "", claims(nil), k.rsa))))
	})
	// Without the token cache: the cost of a token's first use.
	uncached := newFixture(b, func(o *Options, _ *fixture) { o.JWT.CacheSize = -1 })
	b.Run("jwt-hs256-uncached", func(b *testing.B) {
		benchCheck(b, uncached.g, request(bearer(sign(b, jwt.SigningMethodHS256, "", claims(nil), k.hs))))
	})
	b.Run("jwt-es256-uncached", func(b *testing.B) {
		benchCheck(b, uncached.g, request(bearer(sign(b, jwt.SigningMethodES256, "ec1", claims(nil), k.ec))))
	})
	b.Run("jwt-eddsa-uncached", func(b *testing.B) {
		benchCheck(b, uncached.g, request(bearer(sign(b, jwt.SigningMethodEdDSA, "ed1", claims(nil), k.ed))))
	})
	b.Run("jwt-rs256-uncached", func(b *testing.B) {
		benchCheck(b, uncached.g, request(bearer(sign(b, jwt.SigningMethodRS256, "", claims(nil), k.rsa))))
	})
}

func BenchmarkScanJSON(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		var sb strings.Builder
		sb.WriteString(`{"model":"qwen","messages":[`)
		for sb.Len() < size {
			sb.WriteString(`{"role":"user","content":"Grüße aus München, \"quoted\" text \u00e9 🎉"},`)
		}
		sb.WriteString(`{"role":"user","content":"end"}]}`)
		body := []byte(sb.String())
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := ScanJSON(body, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	trusted, _ := ParseIPList([]string{"10.1.1.1", "10.2.0.0/16"})
	proxy := netip.MustParseAddr("10.1.1.1")
	xff := []byte("198.51.100.7, 10.2.3.4")
	b.ReportAllocs()
	for b.Loop() {
		ClientIP(proxy, xff, trusted)
	}
}
