package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/generate"
	"github.com/aiassist/aiassist/engine/modelgen"
)

// longTokens is a max_tokens that tiny-llama takes many seconds to reach,
// with its context stretched (its rotary positions have no limit): a
// generation cut short by its client or its deadline ends far below it.
const longTokens = 90_000

// longLlama is tiny-llama with room for longTokens.
func longLlama(t testing.TB, set *metrics.Set) (*State, *generate.Model) {
	t.Helper()
	m, err := generate.Load(rt, generate.Options{
		Name: tinyLlama, Dir: filepath.Join("..", "..", "examples", "models", "tiny-llama"),
		MaxSequences: 4, ContextLength: longTokens + 100, Metrics: set,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &State{Generators: map[string]*generate.Model{tinyLlama: m}, DefaultModel: tinyLlama}, m
}

// sendRaw opens a connection and writes one request on it.
func sendRaw(t *testing.T, ts *v1Server, id, route, body string, header ...string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testDeadline))
	extra := strings.Join(header, "\r\n")
	if extra != "" {
		extra += "\r\n"
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", route, id, extra, len(body), body)
	return c.(*net.TCPConn)
}

const sequencesActive = `aiassist_sequences_active{model="tiny-llama"}`

// TestHangupStopsGeneration leaves in the middle of non-streamed
// generations, once by closing the sending side (the client still reads)
// and once by resetting the connection: each generation stops at its next
// token and gives its slot back, far below max_tokens; the access log has
// 499 client_disconnected; and the half-closed client reads nothing, not
// even a status line, before the server closes.
func TestHangupStopsGeneration(t *testing.T) {
	set := metrics.NewSet()
	st, _ := longLlama(t, set)
	ts := serveV1(t, st, metrics.NewSet())
	body := fmt.Sprintf(`{"prompt":"Tell me a long story","max_tokens":%d}`, longTokens)
	for _, how := range []string{"half-close", "reset"} {
		t.Run(how, func(t *testing.T) {
			id := "hangup-" + how
			before := gauge(t, set, `aiassist_generated_tokens_total{model="tiny-llama"}`)
			c := sendRaw(t, ts, id, routeGenerate, body)
			waitFor(t, "the generation to make tokens", func() bool {
				return gauge(t, set, `aiassist_generated_tokens_total{model="tiny-llama"}`) > before
			})
			if how == "reset" {
				c.SetLinger(0)
				c.Close()
			} else {
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(c)
				if err != nil || len(b) != 0 {
					t.Errorf("the client that left read %q, %v; want nothing and the connection closed", b, err)
				}
			}
			line := ts.logs.accessLine(t, id)
			if line["error"] != "client_disconnected" || line["status"] != 499.0 {
				t.Errorf("access log %v, want 499 client_disconnected", line)
			}
			n, _ := line["completion_tokens"].(float64)
			t.Logf("stopped after %v of %d tokens", n, longTokens)
			if n <= 0 || n >= longTokens {
				t.Errorf("%v tokens generated for a client that left", line["completion_tokens"])
			}
			waitFor(t, "the sequence to leave", func() bool { return gauge(t, set, sequencesActive) == 0 })
		})
	}
	waitFor(t, "the state references to go", func() bool { return ts.refs.Load() == 0 })
}

// TestHangupWatchLeavesPipelinedRequests sends two non-streamed requests
// in one write: the second sits unread on the connection while the first
// generates, which must not count as the client leaving. Both are
// answered.
func TestHangupWatchLeavesPipelinedRequests(t *testing.T) {
	st, _ := tinyState(t, nil)
	ts := serveV1(t, st, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testDeadline))
	body := `{"prompt":"Hello","max_tokens":150}`
	var req strings.Builder
	for i := range 2 {
		fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: x\r\nX-Request-Id: piped-%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", routeGenerate, i, len(body), body)
	}
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != fmt.Sprintf("piped-%d", i) {
			t.Errorf("response %d: %d %s %s", i, resp.StatusCode, resp.Header.Get("X-Request-Id"), b)
		}
	}
}

// TestGenerationDeadlineFreesSlot gives generations, streamed and not, a
// deadline of X-Request-Timeout 300ms, far less than max_tokens take:
// each ends with 504 naming the header (an error event, for the stream),
// and gives its slot back at its next token.
func TestGenerationDeadlineFreesSlot(t *testing.T) {
	set := metrics.NewSet()
	st, _ := longLlama(t, set)
	ts := serveV1(t, st, nil)
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"prompt":"Tell me a long story","max_tokens":%d,"stream":%v}`, longTokens, stream)
		id := fmt.Sprintf("deadline-%v", stream)
		r := ts.do(t, "POST", routeGenerate, []byte(body), map[string]string{"Content-Type": "application/json", "X-Request-Timeout": "300ms", "X-Request-Id": id})
		want := `did not finish the request within X-Request-Timeout (300ms) and stopped it`
		if stream {
			evs := events(t, r)
			if r.status != 200 || !strings.Contains(evs[len(evs)-1], want) {
				t.Errorf("stream: %d, last event %s", r.status, evs[len(evs)-1])
			}
		} else {
			checkError(t, r, 504, "timeout_error", "deadline_exceeded", want)
		}
		line := ts.logs.accessLine(t, id)
		if line["error"] != "deadline_exceeded" {
			t.Errorf("access log %v", line)
		}
		if n, _ := line["completion_tokens"].(float64); n >= longTokens {
			t.Errorf("stream %v: %v tokens, want it stopped at its deadline", stream, n)
		}
		waitFor(t, "the sequence to leave", func() bool { return gauge(t, set, sequencesActive) == 0 })
	}
}

// spinState serves the spin model, whose run takes as many loop steps as
// a request asks for.
func spinState(t testing.TB, set *metrics.Set, clock func() time.Time) *State {
	t.Helper()
	m := loadModel(t, engine.TensorModelOptions{Name: "spin", Path: writeModel(t, modelgen.SpinModel()), Metrics: set, Clock: clock})
	return &State{Models: map[string]*engine.TensorModel{"spin": m}}
}

func spinBody(iterations int64) string {
	return fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"iterations","shape":[1,1],"datatype":"INT64","data":[%d]}]}`, iterations)
}

// TestTensorDeadlineTerminatesRun asks for a run of about a minute with
// X-Request-Timeout 200ms: ONNX Runtime is told to terminate it, the
// answer is 504 naming the header, the terminated counter says so, and
// the model's one session serves the next request.
func TestTensorDeadlineTerminatesRun(t *testing.T) {
	set := metrics.NewSet()
	ts := serve(t, spinState(t, set, nil), serverOptions{})
	r := ts.do(t, "POST", "/v2/models/spin/infer", []byte(spinBody(1<<24)), map[string]string{"X-Request-Timeout": "200ms"})
	checkError(t, r, 504, "timeout_error", "deadline_exceeded", `model "spin" did not finish the request within X-Request-Timeout (200ms) and stopped it; ask for less (fewer max_tokens), or ask for a longer X-Request-Timeout`)
	if got := gauge(t, set, `aiassist_model_runs_terminated_total{model="spin"}`); got != 1 {
		t.Errorf("aiassist_model_runs_terminated_total = %v, want 1", got)
	}
	resp := decodeResponse(t, ts.post(t, "/v2/models/spin/infer", spinBody(3)))
	if got := f32s(t, resp.Outputs[0].Data); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("output %v", got)
	}
}

// stepClock advances a second at every reading: every run the model
// measures takes a second.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// TestAdmissionRefusesOverHTTP measures runs of a second: once enough are
// measured, a request asking for 500ms is refused at once with 503
// deadline and Retry-After, and counted; one with the server's minute is
// served. A bad X-Request-Timeout is a 400 naming the header.
func TestAdmissionRefusesOverHTTP(t *testing.T) {
	set := metrics.NewSet()
	ts := serve(t, spinState(t, set, (&stepClock{}).Now), serverOptions{})
	short := map[string]string{"X-Request-Timeout": "0.5"}
	for i := range engine.MinSamples {
		if r := ts.do(t, "POST", "/v2/models/spin/infer", []byte(spinBody(1)), short); r.status != 200 {
			t.Fatalf("request %d, before enough runs are measured: %d %s", i, r.status, r.body)
		}
	}
	r := ts.do(t, "POST", "/v2/models/spin/infer", []byte(spinBody(1)), short)
	checkError(t, r, 503, "overloaded_error", "deadline", `model "spin" would take about 1s to answer, more than the`)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got := gauge(t, set, `aiassist_model_admission_refused_total{model="spin",reason="deadline"}`); got != 1 {
		t.Errorf("aiassist_model_admission_refused_total = %v, want 1", got)
	}
	if r := ts.post(t, "/v2/models/spin/infer", spinBody(1)); r.status != 200 {
		t.Errorf("with the server's timeout: %d %s", r.status, r.body)
	}
	r = ts.do(t, "POST", "/v2/models/spin/infer", []byte(spinBody(1)), map[string]string{"X-Request-Timeout": "soon"})
	checkError(t, r, 400, "invalid_request_error", "invalid_input", `X-Request-Timeout must be a positive duration`)
}
