package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/engine/modelgen"
)

// copyDir copies the files of src into a new folder under t's temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// cacheReply is what a test reads of an answer.
type cacheReply struct {
	status int
	xcache string
	body   string
}

// TestResponseCache runs the daemon with the response cache on and checks,
// over HTTP: a repeated greedy request is a hit (X-Cache, "cached": true,
// the same text and usage, no tokens generated); a changed parameter
// misses; a streamed hit sends the events of the streamed miss; "cache":
// false, Cache-Control: no-cache and no-store, a key and a model with
// cache: false, and a sampled request bypass it, while a seeded one is
// cached; a hit is charged to its key's usage and tokens per minute and
// logged as one; a reload that keeps the model keeps its answers, and
// one after its weights were replaced misses.
func TestResponseCache(t *testing.T) {
	requireBinary(t)
	llama := copyDir(t, filepath.Join("..", "examples", "models", "tiny-llama"))
	dir := t.TempDir()
	port := freePort(t)
	plain, nocache, metered := gate.NewKey(), gate.NewKey(), gate.NewKey()
	render := func(timeout string) string {
		return fmt.Sprintf(`listeners: [{port: %d}]
reload: watch: false
server: request_timeout: %q
models: {
	llama: {kind: "causal-lm", path: %q}
	uncached: {kind: "causal-lm", path: %q, cache: false}
}
auth: api_keys: {
	plain: {hash: %q}
	nocache: {hash: %q, cache: false}
	metered: {hash: %q, limit: "metered"}
}
metrics: require_auth: false
limits: classes: metered: tokens_per_minute: 30
cache: {enabled: true, max_entries: 100, ttl: "1h"}
`, port, timeout, llama, llama, gate.HashKey(plain), gate.HashKey(nocache), gate.HashKey(metered))
	}
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, render("30s"))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	call := func(key, path, body string, header ...string) cacheReply {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return cacheReply{resp.StatusCode, resp.Header.Get("X-Cache"), string(b)}
	}
	type generated struct {
		Text   string `json:"text"`
		Cached bool   `json:"cached"`
		Usage  struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	gen := func(key, body string, header ...string) (cacheReply, generated) {
		t.Helper()
		r := call(key, "/v1/generate", body, header...)
		var g generated
		if r.status != 200 || json.Unmarshal([]byte(r.body), &g) != nil {
			t.Fatalf("POST /v1/generate %s: %d %s", body, r.status, r.body)
		}
		return r, g
	}
	generatedTokens := func() float64 { return p.metrics(port)[`aiassist_generated_tokens_total{model="llama"}`] }

	// A hit: the same answer, marked, and nothing generated.
	const greedy = `{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0}`
	miss, first := gen(plain, greedy)
	if miss.xcache != "miss" || first.Cached {
		t.Errorf("first request: X-Cache %q, cached %v; want a miss", miss.xcache, first.Cached)
	}
	before := generatedTokens()
	hit, second := gen(plain, greedy)
	if hit.xcache != "hit" || !second.Cached || second.Text != first.Text || second.Usage != first.Usage {
		t.Errorf("repeated request: X-Cache %q, %+v; want a hit with %+v", hit.xcache, second, first)
	}
	if after := generatedTokens(); after != before {
		t.Errorf("a hit generated %v tokens", after-before)
	}

	// Every parameter that changes the answer is in the key.
	for _, body := range []string{
		`{"model":"llama","prompt":"Hello","max_tokens":9,"temperature":0}`,
		`{"model":"llama","prompt":"Hello ","max_tokens":8,"temperature":0}`,
		`{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0,"stop":["x"]}`,
		`{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0,"repetition_penalty":1.3}`,
		`{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0,"top_k":3}`,
	} {
		if r, _ := gen(plain, body); r.xcache != "miss" {
			t.Errorf("%s: X-Cache %q, want a miss", body, r.xcache)
		}
	}

	// Bypasses.
	for _, c := range []struct {
		name, key, body, want string
		header                []string
	}{
		{name: `"cache": false`, key: plain, body: `{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0,"cache":false}`, want: "bypass"},
		{name: "Cache-Control: no-store", key: plain, body: greedy, want: "bypass", header: []string{"Cache-Control", "no-store"}},
		{name: "Cache-Control: no-cache", key: plain, body: greedy, want: "miss", header: []string{"Cache-Control", "max-age=0, No-Cache"}},
		{name: "a key with cache: false", key: nocache, body: greedy, want: "bypass"},
		{name: "a model with cache: false", key: plain, body: `{"model":"uncached","prompt":"Hello","max_tokens":8,"temperature":0}`, want: "bypass"},
		{name: "a sampled request", key: plain, body: `{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0.8}`, want: "bypass"},
	} {
		for i := range 2 {
			before := generatedTokens()
			r, g := gen(c.key, c.body, c.header...)
			if r.xcache != c.want || g.Cached {
				t.Errorf("%s, request %d: X-Cache %q, cached %v; want %s", c.name, i+1, r.xcache, g.Cached, c.want)
			}
			if c.name != "a model with cache: false" && generatedTokens() == before {
				t.Errorf("%s, request %d: nothing was generated", c.name, i+1)
			}
		}
	}
	const seeded = `{"model":"llama","prompt":"Hello","max_tokens":8,"temperature":0.8,"seed":7}`
	if r, _ := gen(plain, seeded); r.xcache != "miss" {
		t.Errorf("first seeded request: X-Cache %q, want miss", r.xcache)
	}
	if r, _ := gen(plain, seeded); r.xcache != "hit" {
		t.Errorf("repeated seeded request: X-Cache %q, want hit", r.xcache)
	}

	// A streamed hit sends what the streamed miss sent; only the request's
	// own id and time differ.
	const chat = `{"model":"llama","messages":[{"role":"user","content":"Hi there"}],"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`
	events := func(r cacheReply) (string, []string) {
		t.Helper()
		var content strings.Builder
		var out []string
		sc := bufio.NewScanner(strings.NewReader(r.body))
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if data == "[DONE]" {
				out = append(out, data)
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			delete(ev, "id")
			delete(ev, "created")
			b, _ := json.Marshal(ev)
			out = append(out, string(b))
			if ch, _ := ev["choices"].([]any); len(ch) == 1 {
				if d, _ := ch[0].(map[string]any)["delta"].(map[string]any); d != nil {
					s, _ := d["content"].(string)
					content.WriteString(s)
				}
			}
		}
		return content.String(), out
	}
	sMiss := call(plain, "/v1/chat/completions", chat)
	sHit := call(plain, "/v1/chat/completions", chat)
	if sMiss.status != 200 || sHit.status != 200 || sMiss.xcache != "miss" || sHit.xcache != "hit" {
		t.Fatalf("streams: %d %q and %d %q; want a miss, then a hit", sMiss.status, sMiss.xcache, sHit.status, sHit.xcache)
	}
	missText, missEvents := events(sMiss)
	hitText, hitEvents := events(sHit)
	if len(missEvents) < 5 || strings.Join(missEvents, "\n") != strings.Join(hitEvents, "\n") {
		t.Errorf("the streamed hit differs from the streamed miss:\nmiss %q\nhit  %q", missEvents, hitEvents)
	}
	if missText == "" || hitText != missText {
		t.Errorf("stream texts %q and %q", missText, hitText)
	}
	// The same question unstreamed is answered from the same entry.
	whole := call(plain, "/v1/chat/completions", strings.Replace(strings.Replace(chat, `"stream":true`, `"stream":false`, 1), `,"stream_options":{"include_usage":true}`, "", 1))
	var cc struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal([]byte(whole.body), &cc); whole.xcache != "hit" || len(cc.Choices) != 1 || cc.Choices[0].Message.Content != missText {
		t.Errorf("unstreamed chat after the stream: X-Cache %q, %s; want a hit with %q", whole.xcache, whole.body, missText)
	}

	// A hit counts in usage and in tokens per minute: a miss and a hit of
	// 8 + 20 tokens exceed the class's 30, so a third request is refused,
	// which it would not be if the hit were free.
	const long = `{"model":"llama","prompt":"Hello","max_tokens":20,"temperature":0}`
	if r := call(metered, "/v1/generate", long); r.status != 200 {
		t.Fatalf("metered miss: %d %s", r.status, r.body)
	}
	m := p.metrics(port)
	out := `aiassist_request_tokens_total{model="llama",key="metered",issuer="",direction="out"}`
	spent := m[out]
	if r := call(metered, "/v1/generate", long); r.status != 200 || r.xcache != "hit" {
		t.Fatalf("metered hit: %d %q %s", r.status, r.xcache, r.body)
	}
	if got := p.metrics(port)[out]; got != 2*spent || spent == 0 {
		t.Errorf("usage of the metered key: %v tokens after a miss, %v after a hit; want the hit counted", spent, got)
	}
	if r := call(metered, "/v1/generate", long); r.status != 429 {
		t.Errorf("metered third request: %d, want 429 as the hit was charged", r.status)
	}
	if !strings.Contains(p.log.String(), `"cache":"hit"`) || !strings.Contains(p.log.String(), `"cache":"bypass"`) {
		t.Errorf("the access log does not say cache hit and bypass")
	}

	// A reload that keeps the model keeps its answers.
	writeConfig(t, cfg, render("31s"))
	p.signal(syscall.SIGHUP)
	p.until("generation 2", func() bool { return p.metrics(port)["aiassist_config_generation"] == 2 })
	if r, g := gen(plain, greedy); r.xcache != "hit" || g.Text != first.Text {
		t.Errorf("after a reload that keeps the model: X-Cache %q, text %q; want the hit %q", r.xcache, g.Text, first.Text)
	}
	// New weights, renamed over the old as a deploy does: the next reload
	// loads them, and the old answers are gone.
	tl := modelgen.TinyLlama()
	other := modelgen.NewLlama(tl.Config, modelgen.TinyLlamaSeed+1, 3)
	other.LMBias = tl.LMBias
	tmp := filepath.Join(llama, "model.onnx.new")
	if err := modelgen.WriteFile(tmp, other.Model("tiny-llama")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(llama, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.until("generation 3", func() bool { return p.metrics(port)["aiassist_config_generation"] == 3 })
	r, g := gen(plain, greedy)
	if r.xcache != "miss" || g.Cached {
		t.Errorf("after the model's weights changed: X-Cache %q, cached %v; want a miss", r.xcache, g.Cached)
	}
	t.Logf("text before %q, with the new weights %q", first.Text, g.Text)
	if r, _ := gen(plain, greedy); r.xcache != "hit" {
		t.Errorf("repeated after the new weights: X-Cache %q, want hit", r.xcache)
	}
	m = p.metrics(port)
	if m[`aiassist_cache_evictions_total{model="llama",reason="unused"}`] == 0 {
		t.Errorf("no answers of the old weights were dropped: %v", m[`aiassist_cache_evictions_total{model="llama",reason="unused"}`])
	}
	if m[`aiassist_cache_hits_total{model="llama"}`] < 7 || m[`aiassist_cache_entries{model="llama"}`] < 1 || m[`aiassist_cache_bytes{model="llama"}`] < 256 {
		t.Errorf("cache series: hits %v, entries %v, bytes %v", m[`aiassist_cache_hits_total{model="llama"}`], m[`aiassist_cache_entries{model="llama"}`], m[`aiassist_cache_bytes{model="llama"}`])
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
