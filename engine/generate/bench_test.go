package generate

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// BenchmarkDecode measures single-stream generation in process, the
// ceiling for the HTTP API: tokens/s of greedy decoding with the cache
// (prompt excluded) and time to first token.
//
//	go test -run XXX -bench Decode -benchtime 20x ./engine/generate/
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name, dir string
		prompt    []int
	}{
		{"tiny-llama", tinyLlamaDir(b), []int{306, 308, 40, 71, 82, 82, 85, 283, 310, 309}},
		{"tiny-random-gpt2-fp32", sharedModel(b, "tiny-random-gpt2-fp32"), []int{464, 318, 257, 922, 530, 11, 995, 13}},
	}
	const n = 128
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := load(b, Options{Name: c.name, Dir: c.dir})
			var ttft, total time.Duration
			tokens := 0
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				res, err := m.GenerateIDs(b.Context(), c.prompt, Request{MaxTokens: n}, nil)
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(start) - res.TimeToFirstToken
				ttft += res.TimeToFirstToken
				tokens += res.CompletionTokens - 1
			}
			b.ReportMetric(float64(tokens)/total.Seconds(), "tokens/s")
			b.ReportMetric(float64(ttft.Microseconds())/float64(b.N), "ttft-µs")
		})
	}
}

// BenchmarkDecodeConcurrent runs 8 greedy streams at once on one session:
// continuous batching puts them in one batch, so the total tokens/s is
// well above one stream's.
func BenchmarkDecodeConcurrent(b *testing.B) {
	set := metrics.NewSet()
	m := load(b, Options{Name: "tiny-llama", Dir: tinyLlamaDir(b), Metrics: set})
	const streams, n = 8, 128
	var tokens atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var wg sync.WaitGroup
		for i := range streams {
			wg.Go(func() {
				res, err := m.GenerateIDs(b.Context(), []int{306, 308, 40 + i, 71}, Request{MaxTokens: n}, nil)
				if err != nil {
					b.Error(err)
				}
				tokens.Add(int64(res.CompletionTokens))
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(tokens.Load())/time.Since(start).Seconds(), "tokens/s")
	steps, _, sum := batchSizes(b, set, "tiny-llama")
	b.ReportMetric(sum/steps, "mean-batch")
}
