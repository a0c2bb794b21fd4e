// Command generate measures text generation at several numbers of
// concurrent streams: in process (engine/generate, no HTTP: the ceiling)
// and over HTTP against a running aiassistd, streaming POST /v1/generate,
// for each model named. It prints a Markdown table: aggregate tokens/s and
// the p50/p95 gap between two streamed events of a stream (one event per
// decode step per stream, so the inter-token latency).
//
//	go run ./examples/bench/generate -dir examples/models/bench-llama \
//	    -url http://127.0.0.1:18081 -models bench-llama,bench-llama-serial
//
// examples/bench/generate.sh starts the daemon and runs it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
)

func main() {
	dir := flag.String("dir", "", "model folder for the in-process ceiling; empty skips it")
	threads := flag.Int("threads", 2, "intra-op threads of the in-process model")
	url := flag.String("url", "", "aiassistd base URL; empty skips HTTP")
	models := flag.String("models", "", "comma-separated causal-lm models of the daemon to measure")
	streams := flag.String("streams", "1,4,8,16", "comma-separated numbers of concurrent streams")
	tokens := flag.Int("tokens", 32, "tokens each stream generates")
	prompt := flag.String("prompt", "Hello, how are you?", "the prompt of every stream")
	flag.Parse()
	var counts []int
	for s := range strings.SplitSeq(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-streams: %q is not a positive number", s))
		}
		counts = append(counts, n)
	}
	fmt.Println("| server | streams | tokens/s (all streams) | p50 inter-token ms | p95 inter-token ms | p50 first token ms |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	if *dir != "" {
		rt, err := engine.Init(engine.RuntimeOptions{})
		if err != nil {
			fatal(err)
		}
		m, err := generate.Load(rt, generate.Options{Dir: *dir, IntraOpThreads: *threads, MaxSequences: slices.Max(counts)})
		if err != nil {
			fatal(err)
		}
		ids := m.Tokenizer().Encode(*prompt, true)
		run(m, ids, 1, 4) // warm up
		for _, c := range counts {
			report("in process", c, measure(c, func(p *point) error { return inProcess(m, ids, *tokens, p) }))
		}
		m.Close()
	}
	if *url != "" {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		for name := range strings.SplitSeq(*models, ",") {
			body, _ := json.Marshal(map[string]any{"model": name, "prompt": *prompt, "max_tokens": *tokens, "temperature": 0, "stream": true})
			measure(1, func(p *point) error { return overHTTP(client, *url, body, p) }) // warm up
			for _, c := range counts {
				report(name, c, measure(c, func(p *point) error { return overHTTP(client, *url, body, p) }))
			}
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "generate:", err)
	os.Exit(1)
}

// point is what one stream saw.
type point struct {
	start  time.Time
	events []time.Time
	tokens int
}

type result struct {
	streams      []*point
	wall         time.Duration
	gaps, firsts []time.Duration
	tokens       int
}

// measure runs c streams at once and gathers their times.
func measure(c int, stream func(*point) error) result {
	var r result
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for range c {
		wg.Go(func() {
			p := &point{start: time.Now()}
			if err := stream(p); err != nil {
				fatal(err)
			}
			mu.Lock()
			r.streams = append(r.streams, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.wall = time.Since(start)
	for _, p := range r.streams {
		r.tokens += p.tokens
		if len(p.events) > 0 {
			r.firsts = append(r.firsts, p.events[0].Sub(p.start))
		}
		for i := 1; i < len(p.events); i++ {
			r.gaps = append(r.gaps, p.events[i].Sub(p.events[i-1]))
		}
	}
	return r
}

func report(server string, c int, r result) {
	fmt.Printf("| %s | %d | %.1f | %.2f | %.2f | %.1f |\n", server, c, float64(r.tokens)/r.wall.Seconds(),
		ms(quantile(r.gaps, 0.5)), ms(quantile(r.gaps, 0.95)), ms(quantile(r.firsts, 0.5)))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func run(m *generate.Model, ids []int, c, n int) {
	measure(c, func(p *point) error { return inProcess(m, ids, n, p) })
}

func inProcess(m *generate.Model, ids []int, n int, p *point) error {
	_, err := m.GenerateIDs(context.Background(), ids, generate.Request{MaxTokens: n}, func(int) error {
		p.events = append(p.events, time.Now())
		p.tokens++
		return nil
	})
	return err
}

// overHTTP streams one generation; each data event is a step's text, the
// last one carries the usage.
func overHTTP(client *http.Client, url string, body []byte, p *point) error {
	resp, err := client.Post(url+"/v1/generate", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return fmt.Errorf("status %d: %s", resp.StatusCode, b.String())
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ev struct {
			Text  string `json:"text"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return err
		}
		if ev.Usage != nil {
			p.tokens = ev.Usage.CompletionTokens
		}
		if ev.Text != "" {
			p.events = append(p.events, time.Now())
		}
	}
	return sc.Err()
}
