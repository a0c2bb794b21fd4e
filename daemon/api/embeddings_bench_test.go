package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
)

// BenchmarkEmbeddingsHTTP measures /v1/embeddings over loopback as OpenAI
// clients call it (one sentence a request, base64), from 1 and from 32
// concurrent clients, with the dynamic batcher on (max_batch_size 32,
// max_queue_delay 2ms) and off, on tiny-bert (so the HTTP path and the
// batching, not the model, dominate). engine/embed's BenchmarkEmbed is
// the in-process counterpart on a MiniLM-sized encoder.
//
//	go test -run '^$' -bench EmbeddingsHTTP -benchtime 2s ./daemon/api/
func BenchmarkEmbeddingsHTTP(b *testing.B) {
	body := `{"model":"bert","input":"How do I rotate the API keys of the gateway without downtime?","encoding_format":"base64"}`
	for _, batched := range []bool{false, true} {
		m := loadTinyBert(b, embed.Options{IntraOpThreads: 2,
			Batching: engine.BatchOptions{Enabled: batched, MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, MaxQueueSize: 1024}})
		st := &State{Embedders: map[string]*embed.Model{"bert": m}}
		ts := serveV1(b, st, nil)
		st.AccessLog = false
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("batched=%v/clients=%d", batched, clients), func(b *testing.B) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
				next := make(chan struct{}, clients)
				go func() {
					for range b.N {
						next <- struct{}{}
					}
					close(next)
				}()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for range next {
							resp, err := client.Post(ts.url+"/v1/embeddings", "application/json", strings.NewReader(body))
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								b.Errorf("status %d", resp.StatusCode)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "embeddings/s")
			})
		}
	}
}
