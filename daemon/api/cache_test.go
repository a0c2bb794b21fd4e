package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/engine/embed"
)

// cachedState is tiny-llama's state with a response cache.
func cachedState(t testing.TB) *State {
	st, _ := tinyState(t, nil)
	st.Cache = cache.New(cache.Options{MaxEntries: 100, MaxBytes: 1 << 20})
	st.CacheModels = map[string]string{tinyLlama: "files-1"}
	return st
}

// sameEvents drops from stream events what names the request (id,
// created, latency_ms) and what marks a hit (cached).
func sameEvents(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	for _, ev := range events(t, r) {
		if ev == "[DONE]" {
			out = append(out, ev)
			continue
		}
		m := unmarshal[map[string]any](t, ev)
		for _, k := range []string{"id", "created", "latency_ms", "cached"} {
			delete(m, k)
		}
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

// TestCacheStreams: on each generation route a streamed hit sends the
// events of the streamed miss, and /v1/generate marks its last event
// "cached": true; a non-streamed hit of /v1/generate says "cached": true
// and the access log says cache=hit; routes share answers.
func TestCacheStreams(t *testing.T) {
	ts := serveV1(t, cachedState(t), nil)
	for _, c := range []struct{ route, body string }{
		{routeGenerate, `{"prompt":"Hello","max_tokens":10,"temperature":0,"stream":true}`},
		{routeCompletions, `{"prompt":"Hello there","max_tokens":10,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`},
		{routeChat, `{"messages":[{"role":"user","content":"Hello"}],"max_tokens":10,"temperature":0,"stream":true}`},
	} {
		miss, hit := ts.post(t, c.route, c.body), ts.post(t, c.route, c.body)
		if miss.header.Get("X-Cache") != "miss" || hit.header.Get("X-Cache") != "hit" {
			t.Fatalf("%s: X-Cache %q then %q", c.route, miss.header.Get("X-Cache"), hit.header.Get("X-Cache"))
		}
		a, b := sameEvents(t, miss), sameEvents(t, hit)
		if strings.Join(a, "\n") != strings.Join(b, "\n") || len(a) < 4 {
			t.Errorf("%s: the hit's events differ:\nmiss %q\nhit  %q", c.route, a, b)
		}
		if c.route == routeGenerate {
			evs := events(t, hit)
			if last := evs[len(evs)-2]; !strings.Contains(last, `"cached":true`) || strings.Contains(strings.Join(events(t, miss), ""), `"cached"`) {
				t.Errorf("/v1/generate: the hit's last event %s, the miss's events %q", last, events(t, miss))
			}
		}
	}
	// The model reads the same prompt with the same parameters from
	// /v1/completions: one answer serves both routes.
	const body = `{"prompt":"Hello","max_tokens":10,"temperature":0}`
	if r := ts.post(t, routeCompletions, body); r.header.Get("X-Cache") != "hit" || !strings.Contains(string(r.body), `"text_completion"`) {
		t.Errorf("/v1/completions after /v1/generate's stream: X-Cache %q, %s", r.header.Get("X-Cache"), r.body)
	}
	r := ts.post(t, routeGenerate, body)
	g := unmarshal[map[string]any](t, string(r.body))
	if g["cached"] != true || r.header.Get("X-Cache") != "hit" {
		t.Errorf("non-streamed hit: %s, X-Cache %q", r.body, r.header.Get("X-Cache"))
	}
	if line := ts.logs.accessLine(t, r.header.Get("X-Request-Id")); line["cache"] != "hit" || line["tokens_out"] != 10.0 {
		t.Errorf("access log of a hit: %v", line)
	}
}

// TestCacheControl: no-cache skips the read but stores the fresh answer,
// which the next request gets; no-store and "cache": false touch nothing.
func TestCacheControl(t *testing.T) {
	st := cachedState(t)
	ts := serveV1(t, st, nil)
	const body = `{"prompt":"Hi","max_tokens":5,"temperature":0}`
	post := func(body string, header map[string]string) string {
		t.Helper()
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range header {
			h[k] = v
		}
		r := ts.do(t, http.MethodPost, routeGenerate, []byte(body), h)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		return r.header.Get("X-Cache")
	}
	if got := post(body, map[string]string{"Cache-Control": "no-store"}); got != "bypass" || st.Cache.Len() != 0 {
		t.Errorf("no-store: X-Cache %q, %d entries", got, st.Cache.Len())
	}
	if got := post(`{"prompt":"Hi","max_tokens":5,"temperature":0,"cache":false}`, nil); got != "bypass" || st.Cache.Len() != 0 {
		t.Errorf(`"cache": false: X-Cache %q, %d entries`, got, st.Cache.Len())
	}
	if r := ts.post(t, routeGenerate, `{"prompt":"Hi","cache":"no"}`); r.status != 400 || !strings.Contains(string(r.body), `"param":"cache"`) {
		t.Errorf(`"cache": "no": %d %s, want a 400 naming cache`, r.status, r.body)
	}
	if got := post(body, map[string]string{"Cache-Control": "no-cache"}); got != "miss" || st.Cache.Len() != 1 {
		t.Errorf("no-cache: X-Cache %q, %d entries", got, st.Cache.Len())
	}
	if got := post(body, map[string]string{"Cache-Control": "no-cache"}); got != "miss" {
		t.Errorf("no-cache again: X-Cache %q, want miss", got)
	}
	if got := post(body, nil); got != "hit" {
		t.Errorf("after no-cache: X-Cache %q, want hit", got)
	}
}

// BenchmarkGenerateCache measures a non-streamed /v1/generate of 64 greedy
// tokens on tiny-llama over loopback, run (miss: "cache": false, so
// nothing is stored) and answered from the response cache (hit).
//
//	go test -run '^$' -bench GenerateCache -benchtime 200x ./daemon/api/
func BenchmarkGenerateCache(b *testing.B) {
	st := cachedState(b)
	ts := serveV1(b, st, nil)
	st.AccessLog = false
	for _, c := range []struct{ name, body string }{
		{"miss", `{"prompt":"Hello, how are you?","max_tokens":64,"temperature":0,"cache":false}`},
		{"hit", `{"prompt":"Hello, how are you?","max_tokens":64,"temperature":0}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			ts.post(b, routeGenerate, c.body) // the hit's entry
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				r := ts.post(b, routeGenerate, c.body)
				total += time.Since(start)
				if r.status != 200 || (c.name == "hit") != (r.header.Get("X-Cache") == "hit") {
					b.Fatalf("%d %q %s", r.status, r.header.Get("X-Cache"), r.body)
				}
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/request")
		})
	}
}

// TestEmbeddingsCache: /v1/embeddings answers a repeated request from the
// cache, byte for byte, and counts its tokens again; another input, another
// encoding or "cache": false miss, and token ids key apart from text.
func TestEmbeddingsCache(t *testing.T) {
	m := loadTinyBert(t, embed.Options{})
	st := &State{Embedders: map[string]*embed.Model{"bert": m},
		Cache: cache.New(cache.Options{MaxEntries: 100, MaxBytes: 1 << 20}), CacheModels: map[string]string{"bert": "files-1"}}
	ts := serveV1(t, st, nil)
	post := func(body string) reply {
		t.Helper()
		r := ts.post(t, "/v1/embeddings", body)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
		return r
	}
	const body = `{"model":"bert","input":["water and light","a second line"]}`
	miss, hit := post(body), post(body)
	if miss.header.Get("X-Cache") != "miss" || hit.header.Get("X-Cache") != "hit" || string(miss.body) != string(hit.body) {
		t.Fatalf("X-Cache %q then %q; bodies equal: %v", miss.header.Get("X-Cache"), hit.header.Get("X-Cache"), string(miss.body) == string(hit.body))
	}
	if line := ts.logs.accessLine(t, hit.header.Get("X-Request-Id")); line["cache"] != "hit" || line["tokens_in"] == nil || line["tokens_in"] == 0.0 {
		t.Errorf("access log of a hit: %v", line)
	}
	ids, _ := json.Marshal(m.Encode("water and light"))
	for _, other := range []string{
		`{"model":"bert","input":["water and light"]}`,
		`{"model":"bert","input":["water and light","a second line"],"encoding_format":"base64"}`,
		`{"model":"bert","input":` + string(ids) + `}`,
	} {
		if r := post(other); r.header.Get("X-Cache") != "miss" {
			t.Errorf("%s: X-Cache %q, want miss", other, r.header.Get("X-Cache"))
		}
	}
	if r := post(`{"model":"bert","input":["water and light","a second line"],"cache":false}`); r.header.Get("X-Cache") != "bypass" {
		t.Errorf(`"cache": false: X-Cache %q, want bypass`, r.header.Get("X-Cache"))
	}
}
