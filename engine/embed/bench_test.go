package embed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/internal/testpaths"
	"github.com/aiassist/aiassist/engine/modelgen"
)

// benchSentences are retrieval-sized inputs: 10 to 40 tokens each.
var benchSentences = []string{
	"How do I rotate the API keys of the gateway without downtime?",
	"The reload builds a complete new state from the file, opens new or changed models and swaps the pointer.",
	"Embeddings of a team's documents are what retrieval-augmented generation searches.",
	"Where are the access logs written?",
	"A long input is split into overlapping windows of tokens, all embedded in one batch and combined by a token-weighted mean.",
	"What does aiassist_model_queue_wait_seconds measure?",
	"Rate limits answer 429 with Retry-After and the x-ratelimit headers.",
	"Which ONNX Runtime version does the package ship?",
}

// miniLMShaped writes an encoder of all-MiniLM-L6-v2's shape (hidden 384,
// 6 layers, 12 heads, intermediate 1536, vocab 30522; random weights, so
// the speed is the real model's) with its real tokenizer.json.
func miniLMShaped(b *testing.B) string {
	b.Helper()
	tok := testpaths.SharedPath(b, "models/tokenizers/minilm-l6-v2-tokenizer.json")
	dir := b.TempDir()
	c := modelgen.EncoderConfig{VocabSize: 30522, HiddenSize: 384, NumLayers: 6, NumHeads: 12, IntermediateSize: 1536,
		MaxPositions: 512, TypeVocabSize: 2, LayerNormEps: 1e-12}
	if err := modelgen.WriteFile(filepath.Join(dir, "model.onnx"), modelgen.NewEncoder(c, 7).Model("minilm-shaped")); err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(modelgen.EncoderConfigJSON(c))
	data, err := os.ReadFile(tok)
	if err != nil {
		b.Fatal(err)
	}
	for name, d := range map[string][]byte{"config.json": cfg, "tokenizer.json": data} {
		if err := os.WriteFile(filepath.Join(dir, name), d, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkEmbed is what BENCHMARKS.md reports: embeddings per second of
// one sentence per request from 1 and from 32 concurrent clients, with
// the dynamic batcher on (max_batch_size 32, max_queue_delay 2ms) and off,
// on one instance with 2 intra-op threads. It runs in process: the
// tokenizer, the queue, ONNX Runtime and pooling, no HTTP.
func BenchmarkEmbed(b *testing.B) {
	dir := miniLMShaped(b)
	for _, batched := range []bool{false, true} {
		set := metrics.NewSet()
		m, err := Load(ortRuntime(b), Options{Name: "minilm-shaped", Dir: dir, IntraOpThreads: 2, Normalize: true, Metrics: set,
			Batching: engine.BatchOptions{Enabled: batched, MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, MaxQueueSize: 1024}})
		if err != nil {
			b.Fatal(err)
		}
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("batched=%v/clients=%d", batched, clients), func(b *testing.B) {
				ctx := context.Background()
				next := make(chan int, clients)
				go func() {
					for i := range b.N {
						next <- i
					}
					close(next)
				}()
				rows0, runs0 := batchTotals(set)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for i := range next {
							if _, err := m.Embed(ctx, Request{Inputs: []Input{{Text: benchSentences[i%len(benchSentences)]}}}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "embeddings/s")
				rows, runs := batchTotals(set)
				b.ReportMetric((rows-rows0)/max(runs-runs0, 1), "rows/run")
			})
		}
		m.Close()
	}
}

// batchTotals reads the rows run and the runs from the batch-size
// histogram.
func batchTotals(set *metrics.Set) (rows, runs float64) {
	var b strings.Builder
	set.WritePrometheus(&b)
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "aiassist_batch_size_sum"):
			rows = f
		case strings.HasPrefix(name, "aiassist_batch_size_count"):
			runs = f
		}
	}
	return rows, runs
}
