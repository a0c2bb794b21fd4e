package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/api/route"
	"github.com/aiassist/aiassist/daemon/observe"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
)

// These tests serve the committed tiny-llama (examples/models/tiny-llama)
// through the real handler on loopback. Its weights are random, so its
// text means nothing, but it is deterministic for a seed, and it
// practically never emits an end-of-sequence token: "stop" is tested with
// a stop sequence taken from its own greedy output.

const tinyLlama = "tiny-llama"

// The /v1 routes.
const (
	routeGenerate    = "/v1/generate"
	routeCompletions = "/v1/completions"
	routeChat        = "/v1/chat/completions"
	routeModels      = "/v1/models"
)

func loadTinyLlama(t testing.TB, set *metrics.Set) *generate.Model {
	t.Helper()
	return loadGenerator(t, tinyLlama, set)
}

// loadGenerator loads tiny-llama under another name.
func loadGenerator(t testing.TB, name string, set *metrics.Set) *generate.Model {
	t.Helper()
	m, err := generate.Load(rt, generate.Options{
		Name: name, Dir: filepath.Join("..", "..", "examples", "models", "tiny-llama"), MaxSequences: 4, Metrics: set,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// v1Server serves st with an Acquire that counts the references held.
type v1Server struct {
	*testServer
	refs atomic.Int64
	logs *logLines
	gate *writeGate
}

// logLines collects the access log.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	added chan struct{}
}

func (l *logLines) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.lines = append(l.lines, m)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

// wait returns the first log line of the request with id, waiting for
// it up to testDeadline.
func (l *logLines) wait(t testing.TB, id string) map[string]any {
	t.Helper()
	return l.find(t, func(m map[string]any) bool { return m["request_id"] == id })
}

// accessLine waits for the access log line of the request with id.
func (l *logLines) accessLine(t testing.TB, id string) map[string]any {
	t.Helper()
	return l.find(t, func(m map[string]any) bool { return m["request_id"] == id && m["msg"] == "request" })
}

func (l *logLines) find(t testing.TB, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(testDeadline)
	for {
		l.mu.Lock()
		for _, m := range l.lines {
			if match(m) {
				l.mu.Unlock()
				return m
			}
		}
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no such log line after %s", testDeadline)
		}
	}
}

func serveV1(t testing.TB, st *State, set *metrics.Set) *v1Server {
	t.Helper()
	return serveV1With(t, st, set, nil)
}

// serveV1With lets a test change the Server before it serves, e.g. add a
// route of its own.
func serveV1With(t testing.TB, st *State, set *metrics.Set, setup func(*Server)) *v1Server {
	t.Helper()
	if st.RequestTimeout == 0 {
		st.RequestTimeout = time.Minute
	}
	st.AccessLog = true
	vs := &v1Server{logs: &logLines{added: make(chan struct{}, 1)}, gate: newGate()}
	logger := slog.New(slog.NewJSONHandler(vs.logs, nil))
	s := New(Options{
		Acquire: func() (*State, func()) {
			vs.refs.Add(1)
			var once sync.Once
			return st, func() { once.Do(func() { vs.refs.Add(-1) }) }
		},
		Logger: logger, Metrics: set, Version: "test",
	})
	if setup != nil {
		setup(s)
	}
	srv := &fasthttp.Server{Handler: s.Handler, ErrorHandler: s.ErrorHandler, MaxRequestBodySize: maxBody, Logger: quietLogger{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(gatedListener{ln, vs.gate}) }()
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Shutdown()
		select {
		case <-done:
		case <-time.After(testDeadline):
			t.Errorf("the server did not shut down within %s", testDeadline)
		}
	})
	// Cleanups run last first: a test that failed with the gate closed
	// must not keep the server from shutting down.
	t.Cleanup(vs.gate.open)
	vs.testServer = &testServer{url: "http://" + ln.Addr().String(), api: s, client: &http.Client{Transport: tr, Timeout: testDeadline}}
	return vs
}

// writeGate holds the server's writes on one connection of a v1Server, as a
// client that stops reading would. Once armed, the first write that
// carries an event goes out and closes the gate behind it on that
// connection; its later writes wait until the test opens the gate, while
// other connections go on. The stream below them then stops at its next
// flush, and its generation at its next chunk: the tests hold a stream in
// the middle without a hook in the server.
type writeGate struct {
	mu      sync.Mutex
	armed   bool
	held    *gatedConn
	opened  chan struct{}
	once    sync.Once
	waiting chan struct{} // gets a value when a write waits at the gate
}

func newGate() *writeGate {
	return &writeGate{opened: make(chan struct{}), waiting: make(chan struct{}, 1)}
}

func (g *writeGate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *writeGate) open() { g.once.Do(func() { close(g.opened) }) }

// wait waits until a write waits at the closed gate.
func (g *writeGate) wait(t testing.TB) {
	t.Helper()
	select {
	case <-g.waiting:
	case <-time.After(testDeadline):
		t.Fatalf("no write reached the gate within %s", testDeadline)
	}
}

func (g *writeGate) before(c *gatedConn, p []byte) {
	g.mu.Lock()
	held := g.held == c
	if g.held == nil && g.armed && bytes.Contains(p, []byte("data: ")) {
		g.held = c
	}
	g.mu.Unlock()
	if !held {
		return
	}
	select {
	case g.waiting <- struct{}{}:
	default:
	}
	<-g.opened
}

type gatedListener struct {
	net.Listener
	g *writeGate
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{c, l.g}, nil
}

type gatedConn struct {
	net.Conn
	g *writeGate
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.g.before(c, p)
	return c.Conn.Write(p)
}

func tinyState(t testing.TB, set *metrics.Set) (*State, *generate.Model) {
	m := loadTinyLlama(t, set)
	return &State{
		Generators:   map[string]*generate.Model{tinyLlama: m},
		Models:       map[string]*engine.TensorModel{},
		DefaultModel: tinyLlama,
	}, m
}

// events splits an SSE body into its data payloads.
func events(t testing.TB, r reply) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(r.body), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("malformed event %q in %s", ev, r.body)
		}
		out = append(out, data)
	}
	return out
}

func unmarshal[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

type usageJSON struct {
	PromptTokens, CompletionTokens, TotalTokens int
}

func (u *usageJSON) UnmarshalJSON(b []byte) error {
	var v struct {
		P int `json:"prompt_tokens"`
		C int `json:"completion_tokens"`
		T int `json:"total_tokens"`
	}
	err := json.Unmarshal(b, &v)
	*u = usageJSON{v.P, v.C, v.T}
	return err
}

type generateJSON struct {
	ID           string     `json:"id"`
	Model        string     `json:"model"`
	Text         string     `json:"text"`
	FinishReason *string    `json:"finish_reason"`
	Usage        *usageJSON `json:"usage"`
	LatencyMS    *float64   `json:"latency_ms"`
}

type openAIJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int    `json:"index"`
		Text    string `json:"text"`
		Message *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJSON `json:"usage"`
}

// answer is what a route answered, whether streamed or not.
type answer struct {
	text   string
	finish string
	usage  usageJSON
}

// ask posts body to route, with "stream" set as asked, and checks the
// response's shape on the way.
func ask(t testing.TB, ts *v1Server, route, body string, stream bool) answer {
	t.Helper()
	body = strings.TrimSuffix(body, "}") + fmt.Sprintf(`,"stream":%v`, stream)
	if stream && route != routeGenerate {
		body += `,"stream_options":{"include_usage":true}`
	}
	body += "}"
	r := ts.do(t, "POST", route, []byte(body), map[string]string{"X-API-Key": "sk-test-secret"})
	if !stream {
		if r.status != 200 {
			t.Fatalf("%s %s: status %d: %s", route, body, r.status, r.body)
		}
		switch route {
		case routeGenerate:
			g := unmarshal[generateJSON](t, string(r.body))
			if g.Model != tinyLlama || !strings.HasPrefix(g.ID, "gen-") || g.FinishReason == nil || g.Usage == nil || g.LatencyMS == nil || *g.LatencyMS <= 0 {
				t.Fatalf("response %s", r.body)
			}
			return answer{g.Text, *g.FinishReason, *g.Usage}
		default:
			o := unmarshal[openAIJSON](t, string(r.body))
			wantObject := map[string]string{routeCompletions: "text_completion", routeChat: "chat.completion"}[route]
			if o.Object != wantObject || o.Model != tinyLlama || o.Created == 0 || len(o.Choices) != 1 || o.Choices[0].FinishReason == nil || o.Usage == nil {
				t.Fatalf("response %s", r.body)
			}
			text := o.Choices[0].Text
			if route == routeChat {
				if m := o.Choices[0].Message; m == nil || m.Role != "assistant" {
					t.Fatalf("response %s", r.body)
				}
				text = o.Choices[0].Message.Content
			}
			return answer{text, *o.Choices[0].FinishReason, *o.Usage}
		}
	}
	evs := events(t, r)
	if evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", r.body)
	}
	evs = evs[:len(evs)-1]
	var a answer
	switch route {
	case routeGenerate:
		for i, ev := range evs {
			g := unmarshal[generateJSON](t, ev)
			last := i == len(evs)-1
			if (g.FinishReason != nil) != last || (g.Usage != nil) != last || g.Model != tinyLlama {
				t.Fatalf("event %d of %d: %s", i, len(evs), ev)
			}
			a.text += g.Text
			if last {
				a.finish, a.usage = *g.FinishReason, *g.Usage
			}
		}
	default:
		object := "text_completion"
		if route == routeChat {
			object = "chat.completion.chunk"
		}
		var id string
		for i, ev := range evs {
			o := unmarshal[openAIJSON](t, ev)
			if o.Object != object || o.Model != tinyLlama || (id != "" && o.ID != id) {
				t.Fatalf("event %d: %s", i, ev)
			}
			id = o.ID
			switch {
			case i == len(evs)-1: // the usage chunk
				if len(o.Choices) != 0 || o.Usage == nil {
					t.Fatalf("usage event %s", ev)
				}
				a.usage = *o.Usage
				continue
			case len(o.Choices) != 1 || o.Usage != nil:
				t.Fatalf("event %d: %s", i, ev)
			}
			ch := o.Choices[0]
			if (ch.FinishReason != nil) != (i == len(evs)-2) {
				t.Fatalf("finish_reason in event %d of %d: %s", i, len(evs), ev)
			}
			if ch.FinishReason != nil {
				a.finish = *ch.FinishReason
			}
			if route == routeChat {
				if ch.Delta == nil || (i == 0) != (ch.Delta.Role == "assistant") {
					t.Fatalf("event %d: %s (the role comes first, alone)", i, ev)
				}
				if ch.Delta.Content != nil {
					a.text += *ch.Delta.Content
				}
			} else {
				a.text += ch.Text
			}
		}
	}
	return a
}

func TestGenerateRoutes(t *testing.T) {
	st, m := tinyState(t, nil)
	ts := serveV1(t, st, nil)
	tok := m.Tokenizer()
	chatPrompt, err := m.ApplyChatTemplate([]generate.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hello there"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		route, body  string
		promptTokens int
	}{
		{routeGenerate, `{"prompt":"Hello there","max_tokens":24,"temperature":0.8,"seed":7}`, len(tok.Encode("Hello there", true))},
		{routeCompletions, `{"model":"tiny-llama","prompt":"Hello there","max_tokens":24,"temperature":0.8,"seed":7,"top_p":0.95,"n":1,"user":"u1","logprobs":null,"presence_penalty":0,"frequency_penalty":0,"logit_bias":{},"echo":false}`, len(tok.Encode("Hello there", true))},
		{routeCompletions, `{"prompt":["Hello there"],"max_tokens":24,"temperature":0.8,"seed":7,"top_p":0.95}`, len(tok.Encode("Hello there", true))},
		{routeChat, `{"model":"tiny-llama","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello there"}]}],"max_completion_tokens":24,"temperature":0.8,"seed":7,"top_k":40,"logprobs":false,"tools":[],"response_format":{"type":"text"}}`, len(tok.Encode(chatPrompt, false))},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.route, "/v1/"), func(t *testing.T) {
			plain := ask(t, ts, c.route, c.body, false)
			streamed := ask(t, ts, c.route, c.body, true)
			if plain.text == "" || plain.text != streamed.text {
				t.Errorf("streamed text differs from the answer for the same seed:\n streamed %q\n   answer %q", streamed.text, plain.text)
			}
			want := usageJSON{c.promptTokens, 24, c.promptTokens + 24}
			for _, a := range []answer{plain, streamed} {
				if a.finish != "length" || a.usage != want {
					t.Errorf("finish %q usage %+v, want length and %+v", a.finish, a.usage, want)
				}
			}
		})
	}
}

// TestFinishReasonStop stops the greedy text at a piece of itself.
func TestFinishReasonStop(t *testing.T) {
	st, _ := tinyState(t, nil)
	ts := serveV1(t, st, nil)
	for _, route := range []string{routeGenerate, routeCompletions, routeChat} {
		t.Run(strings.TrimPrefix(route, "/v1/"), func(t *testing.T) {
			body := `{"prompt":"Once upon a time","max_tokens":40,"temperature":0}`
			if route == routeChat {
				body = `{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":40,"temperature":0}`
			}
			full := ask(t, ts, route, body, false)
			if full.finish != "length" || len(full.text) < 20 {
				t.Fatalf("greedy text %q finished by %q", full.text, full.finish)
			}
			stop := full.text[12:15]
			want := full.text[:strings.Index(full.text, stop)]
			withStop := strings.TrimSuffix(body, "}") + `,"stop":["zzzzzz",` + strconv.Quote(stop) + `]}`
			for _, stream := range []bool{false, true} {
				a := ask(t, ts, route, withStop, stream)
				if a.finish != "stop" || a.text != want || a.usage.CompletionTokens >= full.usage.CompletionTokens {
					t.Errorf("stream %v, stop %q: %q finished by %q after %d tokens; want %q, stop, fewer than %d",
						stream, stop, a.text, a.finish, a.usage.CompletionTokens, want, full.usage.CompletionTokens)
				}
			}
		})
	}
}

func TestGenerateDefaults(t *testing.T) {
	st, m := tinyState(t, nil)
	ts := serveV1(t, st, nil)
	f := func(route, body string, wantTokens int) {
		t.Helper()
		a := ask(t, ts, route, body, false)
		if a.usage.CompletionTokens != wantTokens || a.finish != "length" {
			t.Errorf("%s %s: %d tokens, %q; want %d, length", route, body, a.usage.CompletionTokens, a.finish, wantTokens)
		}
	}
	// The seed API's 200, OpenAI's 16, and a chat to the end of the
	// context.
	f(routeGenerate, `{"prompt":"Hello"}`, 200)
	f(routeCompletions, `{"prompt":"Hello"}`, 16)
	p, _ := m.ApplyChatTemplate([]generate.Message{{Role: "user", Content: "Hi"}}, true)
	f(routeChat, `{"messages":[{"role":"user","content":"Hi"}]}`, m.ContextLength()-len(m.Tokenizer().Encode(p, false)))
	// max_tokens within the context but beyond what the prompt leaves is
	// cut to what it leaves; beyond the context itself it is refused,
	// with the numbers, as OpenAI and vLLM answer.
	n := m.ContextLength()
	f(routeGenerate, fmt.Sprintf(`{"prompt":"Hello","max_tokens":%d}`, n-1), n-len(m.Tokenizer().Encode("Hello", true)))
	for _, rt := range []string{routeGenerate, routeCompletions} {
		res := ts.do(t, "POST", rt, []byte(`{"prompt":"Hello","max_tokens":100000}`), nil)
		code, body := res.status, string(res.body)
		if code != 400 || !strings.Contains(body, `"param":"max_tokens"`) || !strings.Contains(body, fmt.Sprintf("context of %d tokens", n)) {
			t.Errorf("%s with max_tokens 100000: %d %s", rt, code, body)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	st, _ := tinyState(t, nil)
	st.Models["demo"] = loadModel(t, engine.TensorModelOptions{Name: "demo", Path: demoPath(t), Batching: batching})
	ts := serveV1(t, st, nil)
	long := strings.Repeat("word ", 300)
	cases := []struct {
		name, method, route, body string
		status                    int
		typ, code, param, msg     string
	}{
		{"bad json", "POST", routeGenerate, `{"prompt":`, 400, "invalid_request_error", "invalid_json", "", "not a complete JSON object"},
		{"not an object", "POST", routeCompletions, `[1]`, 400, "invalid_request_error", "invalid_input", "", "must be a JSON object"},
		{"trailing data", "POST", routeGenerate, `{"prompt":"a"} {}`, 400, "invalid_request_error", "invalid_json", "", "after the JSON object"},
		{"no prompt", "POST", routeGenerate, `{"max_tokens":3}`, 400, "invalid_request_error", "invalid_input", "prompt", "prompt is required"},
		{"prompt not a string", "POST", routeGenerate, `{"prompt":3}`, 400, "invalid_request_error", "invalid_input", "prompt", "prompt must be a string, not number"},
		{"max_tokens 0", "POST", routeGenerate, `{"prompt":"a","max_tokens":0}`, 400, "invalid_request_error", "invalid_input", "max_tokens", "at least 1"},
		{"max_tokens float", "POST", routeCompletions, `{"prompt":"a","max_tokens":1.5}`, 400, "invalid_request_error", "invalid_input", "max_tokens", "max_tokens must be an integer"},
		{"negative temperature", "POST", routeGenerate, `{"prompt":"a","temperature":-1}`, 400, "invalid_request_error", "invalid_input", "temperature", "temperature must be"},
		{"top_p above 1", "POST", routeCompletions, `{"prompt":"a","top_p":1.5}`, 400, "invalid_request_error", "invalid_input", "top_p", "between 0 and 1"},
		{"bad seed", "POST", routeGenerate, `{"prompt":"a","seed":1.5}`, 400, "invalid_request_error", "invalid_input", "seed", "seed must be an integer"},
		{"stop not strings", "POST", routeGenerate, `{"prompt":"a","stop":[1]}`, 400, "invalid_request_error", "invalid_input", "stop", "array of strings"},
		{"empty stop", "POST", routeGenerate, `{"prompt":"a","stop":""}`, 400, "invalid_request_error", "invalid_input", "stop", "1 to 256 bytes"},
		{"too many stops", "POST", routeCompletions, `{"prompt":"a","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, 400, "invalid_request_error", "invalid_input", "stop", "at most 16"},
		{"unknown field", "POST", routeGenerate, `{"prompt":"a","temprature":1}`, 400, "invalid_request_error", "unsupported_field", "temprature", `unknown field "temprature"`},
		{"openai field on generate", "POST", routeGenerate, `{"prompt":"a","n":1}`, 400, "invalid_request_error", "unsupported_field", "n", `unknown field "n"`},
		{"n 2", "POST", routeCompletions, `{"prompt":"a","n":2}`, 400, "invalid_request_error", "invalid_input", "n", "n must be 1"},
		{"n 2 chat", "POST", routeChat, `{"messages":[{"role":"user","content":"a"}],"n":2}`, 400, "invalid_request_error", "invalid_input", "n", "n must be 1"},
		{"echo", "POST", routeCompletions, `{"prompt":"a","echo":true}`, 400, "invalid_request_error", "invalid_input", "echo", "echo is not supported"},
		{"two prompts", "POST", routeCompletions, `{"prompt":["a","b"]}`, 400, "invalid_request_error", "invalid_input", "prompt", "one string"},
		{"token prompt", "POST", routeCompletions, `{"prompt":[1,2]}`, 400, "invalid_request_error", "invalid_input", "prompt", "token id prompts"},
		{"logprobs", "POST", routeCompletions, `{"prompt":"a","logprobs":2}`, 400, "invalid_request_error", "invalid_input", "logprobs", "not supported"},
		{"presence_penalty", "POST", routeChat, `{"messages":[{"role":"user","content":"a"}],"presence_penalty":0.5}`, 400, "invalid_request_error", "invalid_input", "presence_penalty", "use repetition_penalty"},
		{"stream_options without stream", "POST", routeChat, `{"messages":[{"role":"user","content":"a"}],"stream_options":{"include_usage":true}}`, 400, "invalid_request_error", "invalid_input", "stream_options", "only allowed when stream is true"},
		{"empty messages", "POST", routeChat, `{"messages":[]}`, 400, "invalid_request_error", "invalid_input", "messages", "at least one message"},
		{"no messages", "POST", routeChat, `{"prompt":"a"}`, 400, "invalid_request_error", "unsupported_field", "prompt", `unknown field "prompt"`},
		{"unknown role", "POST", routeChat, `{"messages":[{"role":"robot","content":"a"}]}`, 400, "invalid_request_error", "invalid_input", "", `role "robot"`},
		{"image part", "POST", routeChat, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "invalid_request_error", "invalid_input", "messages[0].content", ""},
		{"tools", "POST", routeChat, `{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]}`, 400, "invalid_request_error", "invalid_input", "tools", "tools are not supported"},
		{"prompt too long", "POST", routeGenerate, `{"prompt":"` + long + `"}`, 400, "invalid_request_error", "invalid_input", "", "has a context of 256 tokens"},
		{"prompt too long, streamed", "POST", routeCompletions, `{"prompt":"` + long + `","stream":true}`, 400, "invalid_request_error", "invalid_input", "", "has a context of 256 tokens"},
		{"unknown model", "POST", routeCompletions, `{"model":"gpt-4","prompt":"a"}`, 404, "not_found_error", "model_not_found", "model", `model "gpt-4" is not served`},
		{"unknown model, streamed", "POST", routeChat, `{"model":"gpt-4","messages":[{"role":"user","content":"a"}],"stream":true}`, 404, "not_found_error", "model_not_found", "model", `model "gpt-4" is not served`},
		{"tensor model", "POST", routeGenerate, `{"model":"demo","prompt":"a"}`, 400, "invalid_request_error", "invalid_input", "model", "tensor model"},
		{"GET generate", "GET", routeGenerate, "", 405, "invalid_request_error", "method_not_allowed", "", "use POST"},
		{"POST models", "POST", routeModels, "{}", 405, "invalid_request_error", "method_not_allowed", "", "use GET"},
		{"unknown v1 route", "POST", "/v1/audio/speech", "{}", 404, "not_found_error", "not_found", "", "no route"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := ts.do(t, c.method, c.route, body, nil)
			if r.status != c.status {
				t.Errorf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			var e struct {
				Error map[string]string `json:"error"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
				t.Fatalf("body %s is not an OpenAI error", r.body)
			}
			if e.Error["type"] != c.typ || e.Error["code"] != c.code || e.Error["param"] != c.param || !strings.Contains(e.Error["message"], c.msg) {
				t.Errorf("error %s, want type %q code %q param %q message containing %q", r.body, c.typ, c.code, c.param, c.msg)
			}
		})
	}
	// Without a default, a request must name its model.
	st.DefaultModel = ""
	r := ts.post(t, routeGenerate, `{"prompt":"a"}`)
	if r.status != 400 || !strings.Contains(string(r.body), "default_model") {
		t.Errorf("no model and no default: %d %s", r.status, r.body)
	}
}

// TestModelsByProtocol is defect 7: /v1/models lists what the /v1 routes
// serve, the default model first; the KServe repository index lists the
// tensor models; each side says where the other's models are served.
func TestModelsByProtocol(t *testing.T) {
	st, _ := tinyState(t, nil)
	st.Models["demo"] = loadModel(t, engine.TensorModelOptions{Name: "demo", Path: demoPath(t), Batching: batching})
	st.Models["types"] = loadModel(t, engine.TensorModelOptions{Name: "types", Path: typesPath(t)})
	// The default sorts after another model, and before a third.
	for _, name := range []string{"alpha", "zulu"} {
		st.Generators[name] = loadGenerator(t, name, nil)
	}
	ts := serveV1(t, st, nil)
	created := ts.api.started.Unix()
	lm := func(name string) string {
		return fmt.Sprintf(`{"id":%q,"object":"model","created":%d,"owned_by":"aiassist","kind":"causal-lm","max_model_len":256}`, name, created)
	}
	f := func(method, path, body string, status int, want string) {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		r := ts.do(t, method, path, b, nil)
		if r.status != status || !strings.Contains(string(r.body), want) {
			t.Errorf("%s %s %s = %d %s\nwant %d and %s", method, path, body, r.status, r.body, status, want)
		}
	}
	f("GET", routeModels, "", 200, `{"object":"list","data":[`+lm(tinyLlama)+","+lm("alpha")+","+lm("zulu")+"]}")
	f("GET", routeModels+"/alpha", "", 200, lm("alpha"))
	f("GET", routeModels+"/demo", "", 404, `model \"demo\" is a tensor model, served on POST /v2/models/demo/infer`)
	f("GET", routeModels+"/nope", "", 404, `model \"nope\" is not served; GET /v1/models lists the models`)
	index := `[{"name":"demo","version":"1","state":"READY"},{"name":"types","version":"1","state":"READY"}]`
	f("POST", "/v2/repository/index", "", 200, index)
	f("POST", "/v2/repository/index", `{"ready":true}`, 200, index)
	f("POST", "/v2/repository/index", `{"ready":false}`, 200, index)
	f("POST", "/v2/repository/index", `{"ready":1}`, 400, `"param":"ready"`)
	f("POST", "/v2/repository/index", `{"ready":true}]`, 400, "trailing data")
	f("POST", "/v2/repository/index", `{"model":"x"}`, 400, `unknown field \"model\"`)
	f("GET", "/v2/repository/index", "", 405, "use POST")
	for _, path := range []string{"/v2/models/tiny-llama", "/v2/models/tiny-llama/ready", "/v2/models/tiny-llama/versions/1"} {
		f("GET", path, "", 404, `model \"tiny-llama\" is a causal-lm model, served by POST /v1/chat/completions, /v1/completions and /v1/generate`)
	}
	f("POST", "/v2/models/tiny-llama/infer", inferBody(1, `[1,2,3,4]`), 404, "GET /v1/models lists those models")
	f("POST", "/v2/models/nope/infer", inferBody(1, `[1,2,3,4]`), 404, `model \"nope\" is not served; POST /v2/repository/index lists the tensor models`)

	// Without a default model, the list is sorted.
	st.DefaultModel = ""
	f("GET", routeModels, "", 200, `{"object":"list","data":[`+lm("alpha")+","+lm(tinyLlama)+","+lm("zulu")+"]}")
	// With no causal-lm models the list is empty, not null.
	ts2 := serveV1(t, &State{Models: st.Models}, nil)
	if r := ts2.get(t, routeModels); string(r.body) != `{"object":"list","data":[]}` {
		t.Errorf("GET /v1/models with tensor models only: %s", r.body)
	}
}

// TestStreamHoldsState checks that a stream keeps its state until it ends,
// though fasthttp writes it after the handler has returned: the gate holds
// the stream's second write, when Handler has long returned.
func TestStreamHoldsState(t *testing.T) {
	st, _ := tinyState(t, nil)
	ts := serveV1(t, st, nil)
	type result struct {
		r   reply
		err error
	}
	done := make(chan result, 1)
	ts.gate.arm()
	go func() {
		resp, err := ts.client.Post(ts.url+routeGenerate, "application/json", strings.NewReader(`{"prompt":"a","max_tokens":30,"stream":true}`))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{reply{resp.StatusCode, resp.Header, b}, err}
	}()
	ts.gate.wait(t)
	if n := ts.refs.Load(); n != 1 {
		t.Errorf("%d state references held in the middle of a stream, want 1", n)
	}
	ts.gate.open()
	var res result
	select {
	case res = <-done:
	case <-time.After(testDeadline):
		t.Fatalf("the stream did not end within %s", testDeadline)
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	evs := events(t, res.r)
	if evs[len(evs)-1] != "[DONE]" {
		t.Errorf("stream %s", res.r.body)
	}
	id := res.r.header.Get("X-Request-Id")
	line := ts.logs.wait(t, id)
	if line["completion_tokens"] != 30.0 || line["finish_reason"] != "length" || line["route"] != routeGenerate || line["model"] != tinyLlama {
		t.Errorf("access log %v", line)
	}
	// The reference goes right after the log line.
	waitFor(t, "the stream's state reference to go", func() bool { return ts.refs.Load() == 0 })
}

// TestClientDisconnectStopsGeneration closes the connection in the middle
// of a stream: the generation must stop early and give its slot back.
func TestClientDisconnectStopsGeneration(t *testing.T) {
	set := metrics.NewSet()
	st, _ := tinyState(t, set)
	ts := serveV1(t, st, metrics.NewSet())

	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(testDeadline))
	// The server's writes after the first event wait until the client is
	// gone, so the generation cannot finish first.
	ts.gate.arm()
	body := `{"prompt":"Tell me a long story","max_tokens":240,"stream":true}`
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", routeGenerate, len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	ts.gate.wait(t)
	// Reset rather than close politely, so that the server's next write
	// fails at once.
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	ts.gate.open()

	log := ts.logs.wait(t, "gone-1")
	if log["error"] != "client_disconnected" || log["status"] != 200.0 {
		t.Errorf("access log %v, want error client_disconnected", log)
	}
	t.Logf("the generation stopped after %v of 240 tokens", log["completion_tokens"])
	if n, _ := log["completion_tokens"].(float64); n <= 0 || n >= 100 {
		t.Errorf("%v tokens generated for a client that left after the first; want it stopped early", log["completion_tokens"])
	}
	// The slot is given back once the lane drops the sequence.
	waitFor(t, "the sequence to leave", func() bool { return gauge(t, set, `aiassist_sequences_active{model="tiny-llama"}`) == 0 })
	waitFor(t, "the state reference to go", func() bool { return ts.refs.Load() == 0 })
}

// gauge reads one series from set.
func gauge(t testing.TB, set *metrics.Set, name string) float64 {
	t.Helper()
	var b strings.Builder
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in\n%s", name, b.String())
	return 0
}

// TestGenerateAccessLog checks the fields a generation adds to its log
// line, that the prompt and text are there only with log_prompts, and
// that the API key never is.
func TestGenerateAccessLog(t *testing.T) {
	st, _ := tinyState(t, nil)
	ts := serveV1(t, st, nil)
	for _, logPrompts := range []bool{false, true} {
		st.Prompts = nil
		if logPrompts {
			st.Prompts, _ = observe.NewPrompts(observe.PromptOptions{})
		}
		for _, stream := range []bool{false, true} {
			id := fmt.Sprintf("log-%v-%v", logPrompts, stream)
			body := fmt.Sprintf(`{"prompt":"secret question","max_tokens":5,"seed":3,"stream":%v}`, stream)
			r := ts.do(t, "POST", routeGenerate, []byte(body), map[string]string{"X-API-Key": "sk-never-logged", "X-Request-Id": id})
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			line := ts.logs.wait(t, id)
			if line["prompt_tokens"] != float64(len(st.Generators[tinyLlama].Tokenizer().Encode("secret question", true))) ||
				line["completion_tokens"] != 5.0 || line["finish_reason"] != "length" {
				t.Errorf("log %v", line)
			}
			if ttft, _ := line["ttft_seconds"].(float64); ttft <= 0 {
				t.Errorf("ttft_seconds %v", line["ttft_seconds"])
			}
			_, hasPrompt := line["prompt"]
			resp, hasResponse := line["response"]
			if hasPrompt != logPrompts || hasResponse != logPrompts {
				t.Errorf("log_prompts %v: log %v", logPrompts, line)
			}
			if logPrompts && (line["prompt"] != "secret question" || resp == "") {
				t.Errorf("log %v", line)
			}
			b, _ := json.Marshal(line)
			if strings.Contains(string(b), "sk-never-logged") {
				t.Errorf("the API key is in the log: %s", b)
			}
		}
	}
}

// TestGenerateDeadline checks that a generation longer than the request
// timeout gives 504, streamed or not.
func TestGenerateDeadline(t *testing.T) {
	st, _ := tinyState(t, nil)
	st.RequestTimeout = time.Nanosecond
	ts := serveV1(t, st, nil)
	for _, stream := range []bool{false, true} {
		r := ts.post(t, routeGenerate, fmt.Sprintf(`{"prompt":"a","max_tokens":200,"stream":%v}`, stream))
		if r.status != 504 || !strings.Contains(string(r.body), "server.request_timeout") {
			t.Errorf("stream %v: %d %s", stream, r.status, r.body)
		}
	}
}

// TestGenerateQueueFull holds a stream of a model that runs one
// generation and queues none: the next request is refused with 503 and a
// message that names the setting to raise.
func TestGenerateQueueFull(t *testing.T) {
	m, err := generate.Load(rt, generate.Options{Name: "one", Dir: filepath.Join("..", "..", "examples", "models", "tiny-llama"), MaxSequences: 1, MaxQueue: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	ts := serveV1(t, &State{Generators: map[string]*generate.Model{"one": m}, DefaultModel: "one"}, nil)
	done := make(chan reply, 1)
	ts.gate.arm()
	go func() {
		resp, err := ts.client.Post(ts.url+routeGenerate, "application/json", strings.NewReader(`{"prompt":"a","max_tokens":200,"stream":true}`))
		if err != nil {
			done <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- reply{resp.StatusCode, resp.Header, b}
	}()
	// The held stream keeps its generation, and its slot, until it is
	// written.
	ts.gate.wait(t)
	for _, stream := range []bool{false, true} {
		r := ts.post(t, routeChat, fmt.Sprintf(`{"messages":[{"role":"user","content":"a"}],"stream":%v}`, stream))
		checkError(t, r, 503, "overloaded_error", "queue_full", `model "one": queue is full (max_queue 0, 1 generations running (max_sequences) and 0 waiting); retry later, or raise max_queue`)
		if got := r.header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After %q, want 1", got)
		}
	}
	ts.gate.open()
	select {
	case r := <-done:
		if evs := events(t, r); evs[len(evs)-1] != "[DONE]" {
			t.Errorf("the held stream ended with %s", evs[len(evs)-1])
		}
	case <-time.After(testDeadline):
		t.Fatalf("the held stream did not end within %s", testDeadline)
	}
}

// TestStreamErrorEvent makes a stream outlast its deadline after its first
// chunk: the status is sent already, so the error is the last event. The
// writeGate holds the stream past the deadline.
func TestStreamErrorEvent(t *testing.T) {
	st, _ := tinyState(t, nil)
	st.RequestTimeout = time.Second
	ts := serveV1(t, st, nil)
	done := make(chan reply, 1)
	ts.gate.arm()
	go func() {
		req, _ := http.NewRequest("POST", ts.url+routeChat, strings.NewReader(`{"messages":[{"role":"user","content":"a"}],"max_tokens":200,"stream":true}`))
		req.Header.Set("X-Request-Id", "late-1")
		resp, err := ts.client.Do(req)
		if err != nil {
			done <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- reply{resp.StatusCode, resp.Header, b}
	}()
	ts.gate.wait(t)
	// The generation started before the gate held, so its deadline has
	// passed after this long. The lane may have decoded every token by
	// then, but the stream has not sent them: the rest is refused.
	time.Sleep(st.RequestTimeout)
	ts.gate.open()
	var r reply
	select {
	case r = <-done:
	case <-time.After(testDeadline):
		t.Fatalf("the stream did not end within %s", testDeadline)
	}
	evs := events(t, r)
	var last struct {
		Error map[string]string `json:"error"`
	}
	if err := json.Unmarshal([]byte(evs[len(evs)-1]), &last); err != nil || last.Error["code"] != "deadline_exceeded" || last.Error["type"] != "timeout_error" ||
		!strings.Contains(last.Error["message"], "server.request_timeout (1s)") {
		t.Fatalf("last event %s, want a deadline_exceeded error", evs[len(evs)-1])
	}
	if len(evs) < 3 {
		t.Errorf("events %q: want the role and some text before the error", evs)
	}
	if line := ts.logs.accessLine(t, "late-1"); line["error"] != "deadline_exceeded" || line["status"] != 200.0 {
		t.Errorf("access log %v", line)
	}
}

// panicStream is a stream with a bug.
type panicStream struct{}

func (panicStream) Write(w *route.SSE) {
	w.Event(map[string]string{"text": "before"})
	panic("stream bug")
}

// TestPanicAnswers500 makes a handler and a stream panic: fasthttp recovers
// neither, so without the recovery the test binary itself would die. The
// request gets a 500 (or its stream ends), its state reference goes, and
// the server goes on serving.
func TestPanicAnswers500(t *testing.T) {
	st, _ := tinyState(t, nil)
	// A model with no chat config panics in ApplyChatTemplate.
	st.Generators["broken"] = &generate.Model{}
	// No route panics in its stream, so the test adds one.
	ts := serveV1With(t, st, nil, func(s *Server) {
		s.routes.Add(&route.Route{Name: "/test/panic-stream", Method: "POST", Resolve: func(*route.Request) (route.Handler, error) {
			return route.HandlerFunc(func(r *route.Request) (route.Stream, error) {
				r.Ctx.SetContentType("text/event-stream")
				return panicStream{}, nil
			}), nil
		}})
	})

	r := ts.do(t, "POST", routeChat, []byte(`{"model":"broken","messages":[{"role":"user","content":"a"}]}`), map[string]string{"X-Request-Id": "panic-1"})
	checkError(t, r, 500, "server_error", "internal_error", "internal error")
	if r.header.Get("X-Request-Id") != "panic-1" {
		t.Errorf("X-Request-Id %q", r.header.Get("X-Request-Id"))
	}
	if line := ts.logs.wait(t, "panic-1"); line["msg"] != "panic while serving a request" || line["stack"] == nil {
		t.Errorf("first log line %v, want the panic with its stack", line)
	}
	if line := ts.logs.accessLine(t, "panic-1"); line["status"] != 500.0 || line["error"] != "internal_error" {
		t.Errorf("access log %v", line)
	}

	r = ts.do(t, "POST", "/test/panic-stream", []byte("{}"), map[string]string{"X-Request-Id": "panic-2"})
	if r.status != 200 || !strings.Contains(string(r.body), "before") {
		t.Errorf("panicking stream: %d %s", r.status, r.body)
	}
	if line := ts.logs.wait(t, "panic-2"); line["msg"] != "panic while serving a request" || line["err"] != "stream bug" {
		t.Errorf("first log line %v, want the stream's panic", line)
	}
	if line := ts.logs.accessLine(t, "panic-2"); line["error"] != "internal_error" || line["route"] != "/test/panic-stream" {
		t.Errorf("access log of the stream %v", line)
	}

	if r := ts.post(t, routeGenerate, `{"prompt":"a","max_tokens":2}`); r.status != 200 {
		t.Errorf("after the panics: %d %s", r.status, r.body)
	}
	waitFor(t, "every state reference to go", func() bool { return ts.refs.Load() == 0 })
}
