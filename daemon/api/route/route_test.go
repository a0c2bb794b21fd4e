package route

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/engine"
)

func TestErrorFrom(t *testing.T) {
	st := &State{RequestTimeout: 20 * time.Millisecond}
	f := func(err error, status int, code string, retry int, msg ...string) {
		t.Helper()
		e := ErrorFrom(err, st)
		if e.Status != status || e.Code != code || e.RetryAfter != retry {
			t.Errorf("ErrorFrom(%v) = %d %s retry %d, want %d %s retry %d", err, e.Status, e.Code, e.RetryAfter, status, code, retry)
		}
		for _, m := range msg {
			if !strings.Contains(e.Message, m) {
				t.Errorf("ErrorFrom(%v): message %q does not say %q", err, e.Message, m)
			}
		}
	}
	tensorFull := &engine.LimitError{Model: "hold", Setting: "batching.max_queue_size", Limit: 1}
	genFull := &engine.LimitError{Model: "tiny", Setting: "max_queue", Limit: 64, Detail: "4 generations running (max_sequences) and 64 waiting"}
	f(tensorFull, 503, "queue_full", 1, `model "hold"`, "raise batching.max_queue_size")
	f(fmt.Errorf("infer: %w", genFull), 503, "queue_full", 1, `model "tiny"`, "raise max_queue", "4 generations running")
	f(engine.ErrQueueFull, 503, "queue_full", 1, "queue is full")
	f(&engine.DeadlineError{Model: "hold", Cause: context.DeadlineExceeded}, 504, "deadline_exceeded", 0,
		`queue of model "hold"`, "waited in the queue", "past its deadline", "server.request_timeout 20ms")
	f(fmt.Errorf("%w: %w", engine.ErrExpired, context.DeadlineExceeded), 504, "deadline_exceeded", 0, "waited in the queue", "server.request_timeout")
	f(context.DeadlineExceeded, 504, "deadline_exceeded", 0, "did not finish within server.request_timeout (20ms)")
	f(fmt.Errorf("model %q: %w", "m", engine.ErrClosed), 503, "model_unavailable", 1, "unloaded", "retry")
	f(fmt.Errorf("%w: bad", engine.ErrInvalidInput), 400, "invalid_input", 0, "bad")
	f(fmt.Errorf("%w: role %q", engine.ErrInvalidInput, strings.Repeat("r", 1<<20)), 400, "invalid_input", 0, "role")
	f(ModelNotFound("x", "GET /v1/models lists the models"), 404, "model_not_found", 0, `model "x" is not served; GET /v1/models`)
	f(fmt.Errorf("wrapped: %w", BadRequest("no")), 400, "invalid_input", 0, "no")
	f(errors.New("boom"), 500, "internal_error", 0, "boom")

	// Messages the engine builds from request values stay bounded.
	if e := ErrorFrom(fmt.Errorf("%w: %s", engine.ErrInvalidInput, strings.Repeat("x", 1<<20)), st); len(e.Message) > maxMessage+len("…") {
		t.Errorf("an engine message of %d bytes is passed on whole", len(e.Message))
	}
}

func TestEcho(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Echo(in); got != want {
			t.Errorf("Echo(%.80q) = %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("demo", "demo")
	f(strings.Repeat("a", MaxEcho), strings.Repeat("a", MaxEcho))
	f(strings.Repeat("a", MaxEcho+1), strings.Repeat("a", MaxEcho)+"…")
	f(strings.Repeat("a", 1<<20), strings.Repeat("a", MaxEcho)+"…")
	// A cut never splits a rune: "é" is 2 bytes, so 63 a's and é end at
	// byte 65, and the é goes whole.
	f(strings.Repeat("a", MaxEcho-1)+"éé", strings.Repeat("a", MaxEcho-1)+"…")
	// Invalid UTF-8 is cut at the bound.
	f(strings.Repeat("\x80", 100), strings.Repeat("\x80", MaxEcho)+"…")
	if q := Quote(strings.Repeat("m", 1<<20)); q != `"`+strings.Repeat("m", MaxEcho)+`…"` {
		t.Errorf("Quote = %.100s", q)
	}
}

// TestErrorWriters checks that a response and a stream event carry the
// same error body, param included.
func TestErrorWriters(t *testing.T) {
	e := ParamError("messages[0].content", "messages[0] has no content")
	var ctx fasthttp.RequestCtx
	WriteError(&ctx, e)
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	w := NewSSE(bw)
	if err := w.Error(e); err != nil {
		t.Fatal(err)
	}
	body := string(ctx.Response.Body())
	want := `{"error":{"message":"messages[0] has no content","type":"invalid_request_error","code":"invalid_input","param":"messages[0].content"}}`
	if body != want || ctx.Response.StatusCode() != 400 || string(ctx.Response.Header.ContentType()) != "application/json" {
		t.Errorf("response %d %s", ctx.Response.StatusCode(), body)
	}
	if buf.String() != "data: "+want+"\n\n" || w.Written() != buf.Len() {
		t.Errorf("event %q (%d bytes counted)", buf.String(), w.Written())
	}
	// Retry-After goes with the status.
	ctx.Response.Reset()
	WriteError(&ctx, ErrorFrom(engine.ErrClosed, &State{}))
	if got := string(ctx.Response.Header.Peek("Retry-After")); got != "1" {
		t.Errorf("Retry-After %q", got)
	}
}

func TestDecode(t *testing.T) {
	type inner struct {
		N *int `json:"n"`
	}
	type body struct {
		A string  `json:"a"`
		B []int   `json:"b"`
		C float64 `json:"c"`
		inner
	}
	f := func(in string, code, param, msg string) {
		t.Helper()
		var v body
		err := Decode([]byte(in), &v)
		if code == "" {
			if err != nil {
				t.Errorf("Decode(%q): %v", in, err)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != code || e.Param != param || !strings.Contains(e.Message, msg) {
			t.Errorf("Decode(%.80q) = %+v, want 400 %s param %q message containing %q", in, e, code, param, msg)
		}
	}
	f(`{"a":"x","b":[1],"c":1.5,"n":3}`, "", "", "")
	f(" {} \n", "", "", "")
	// Anything after the object is refused, whatever it is: the KServe
	// route took `]` before this decoder was shared.
	for _, tail := range []string{"]", "}", "{}", `"x"`, "1", "x", "[", ",", "null"} {
		f(`{"a":"x"}`+tail, "invalid_json", "", "trailing data after the JSON object")
		f(`{"a":"x"} `+tail+" ", "invalid_json", "", "trailing data after the JSON object")
	}
	f(`null`, "invalid_input", "", "must be a JSON object")
	f(`[1]`, "invalid_input", "", "must be a JSON object")
	f(`"x"`, "invalid_input", "", "must be a JSON object")
	f(``, "invalid_json", "", "not a complete JSON object")
	f(`{"a":`, "invalid_json", "", "not a complete JSON object")
	f(`{"a":x}`, "invalid_json", "", "not valid JSON")
	f(`{"a":1}`, "invalid_input", "a", "a must be a string, not number")
	f(`{"n":"x"}`, "invalid_input", "n", "n must be an integer, not string")
	f(`{"b":{}}`, "invalid_input", "b", "b must be an array")
	f(`{"zz":1}`, "unsupported_field", "zz", `unknown field "zz"`)
	// Values echoed back are capped.
	long := strings.Repeat("k", 1<<20)
	f(`{"`+long+`":1}`, "unsupported_field", strings.Repeat("k", MaxEcho)+"…", `unknown field "`+strings.Repeat("k", MaxEcho)+`…"`)
	f(`{"n":1`+strings.Repeat("0", 1<<20)+`}`, "invalid_input", "n", "not number 1"+strings.Repeat("0", MaxEcho-len("number 1"))+"…")
}

// FuzzDecode checks the shared decoder against encoding/json: whatever it
// accepts is one valid JSON object that json.Unmarshal decodes the same,
// and adding any data after it makes it refused; every refusal is a 400
// whose message and param stay short.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":"x","b":[1,2],"c":1.5,"d":{"n":1}}`, `{}`, `{"a":"x"}]`, `{"b":[1]} {}`, `null`, `[1]`, `{"zz":1}`, `{"n":1e999}`, ` {"a":"\u00e9"} `} {
		f.Add([]byte(s))
	}
	type inner struct {
		N *int `json:"n"`
	}
	type body struct {
		A string          `json:"a"`
		B []int           `json:"b"`
		C float64         `json:"c"`
		D *inner          `json:"d"`
		R json.RawMessage `json:"r"`
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got body
		err := Decode(in, &got)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Type != "invalid_request_error" || e.Message == "" {
				t.Fatalf("Decode(%q) = %v (%T)", in, err, err)
			}
			if len(e.Message) > 1024 || len(e.Param) > MaxEcho+len("…") {
				t.Fatalf("Decode(%q): a message of %d bytes, param %d", in, len(e.Message), len(e.Param))
			}
			return
		}
		if !json.Valid(in) || !bytes.HasPrefix(bytes.TrimSpace(in), []byte("{")) {
			t.Fatalf("Decode accepted %q, which is not one JSON object", in)
		}
		var want body
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatalf("Decode accepted %q; json.Unmarshal: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(%q) = %+v, json.Unmarshal %+v", in, got, want)
		}
		for _, tail := range []string{"]", "}", "x", "{}", "0"} {
			var v body
			if Decode(append(bytes.Clone(in), tail...), &v) == nil {
				t.Fatalf("Decode accepted %q with %q after it", in, tail)
			}
		}
	})
}
