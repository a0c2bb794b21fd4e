package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkGenerateHTTP measures one stream over HTTP, as a client sees
// it: time to first token (request sent to the first text event read) and
// decode tokens/s after it, greedy, 128 tokens, on tiny-llama. The
// in-process ceiling is engine/generate's BenchmarkDecode.
//
//	go test -run '^$' -bench GenerateHTTP -benchtime 50x ./daemon/api/
func BenchmarkGenerateHTTP(b *testing.B) {
	st, _ := tinyState(b, nil)
	ts := serveV1(b, st, nil)
	st.AccessLog = false
	const n = 128
	body := `{"prompt":"Hello, how are you?","max_tokens":128,"temperature":0,"stream":true}`
	var ttft, decode time.Duration
	tokens := 0
	client := &http.Client{Transport: &http.Transport{}}
	for b.Loop() {
		start := time.Now()
		resp, err := client.Post(ts.url+routeGenerate, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		var first, last time.Time
		var g generateJSON
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			if first.IsZero() {
				first = time.Now()
			}
			if err := json.Unmarshal([]byte(data), &g); err != nil {
				b.Fatal(err)
			}
			last = time.Now()
		}
		resp.Body.Close()
		if g.Usage == nil || g.Usage.CompletionTokens != n {
			b.Fatalf("stream ended without %d tokens: %+v", n, g)
		}
		ttft += first.Sub(start)
		decode += last.Sub(first)
		tokens += n - 1
	}
	b.ReportMetric(float64(tokens)/decode.Seconds(), "tokens/s")
	b.ReportMetric(float64(ttft.Microseconds())/float64(b.N), "ttft-µs")
}
