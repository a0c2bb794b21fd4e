package route

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/engine"
)

func TestParseTimeout(t *testing.T) {
	f := func(in string, want time.Duration, ok bool) {
		t.Helper()
		got, gotOK := parseTimeout(in)
		if gotOK != ok || (ok && got != want) {
			t.Errorf("parseTimeout(%q) = %s %v, want %s %v", in, got, gotOK, want, ok)
		}
	}
	f("5s", 5*time.Second, true)
	f("500ms", 500*time.Millisecond, true)
	f("1m30s", 90*time.Second, true)
	f("5", 5*time.Second, true)
	f("1.5", 1500*time.Millisecond, true)
	f(".5", 500*time.Millisecond, true)
	f("0.001", time.Millisecond, true)
	for _, bad := range []string{"", "0", "0s", "-5s", "-1", "abc", "5 s", "1e3", "0x10", "inf", "NaN", "1.2.3", ".", "+5",
		"100000000h", "99999999999", strings.Repeat("9", 40), "0.0000000001"} {
		f(bad, 0, false)
	}
}

func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"5s", "1.5", "abc", "-1s", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseTimeout(s)
		if ok && (d <= 0 || d > maxTimeout) {
			t.Fatalf("parseTimeout(%q) = %s, accepted", s, d)
		}
	})
}

// TestDeadline checks the context a request runs under: the server's
// timeout from the request's arrival, or the client's shorter one, with a
// *Timeout naming it as the cause.
func TestDeadline(t *testing.T) {
	start := time.Now()
	f := func(server time.Duration, header string, want time.Duration) {
		t.Helper()
		r := &Request{Ctx: &fasthttp.RequestCtx{}, State: &State{RequestTimeout: server}, Start: start}
		if header != "" {
			r.Ctx.Request.Header.Set(TimeoutHeader, header)
		}
		ctx, cancel, err := Deadline(r)
		if err != nil {
			t.Fatalf("server %s, header %q: %v", server, header, err)
		}
		defer cancel()
		dl, ok := ctx.Deadline()
		if want == 0 {
			if ok {
				t.Errorf("server %s, header %q: deadline %s, want none", server, header, dl)
			}
			return
		}
		if !ok || !dl.Equal(start.Add(want)) {
			t.Errorf("server %s, header %q: deadline %v after the start, want %s", server, header, dl.Sub(start), want)
		}
	}
	f(30*time.Second, "", 30*time.Second)
	f(30*time.Second, "5s", 5*time.Second)
	f(30*time.Second, "2.5", 2500*time.Millisecond)
	f(30*time.Second, "1h", 30*time.Second) // capped
	f(0, "", 0)
	f(0, "5s", 5*time.Second)

	// The cause of a deadline that passed names where it came from.
	r := &Request{Ctx: &fasthttp.RequestCtx{}, State: &State{RequestTimeout: time.Minute}, Start: start.Add(-time.Hour)}
	r.Ctx.Request.Header.Set(TimeoutHeader, "5s")
	ctx, cancel, err := Deadline(r)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	<-ctx.Done()
	var to *Timeout
	if cause := context.Cause(ctx); !errors.As(cause, &to) || to.Setting != TimeoutHeader || to.Timeout != 5*time.Second || !errors.Is(cause, context.DeadlineExceeded) {
		t.Errorf("cause %v, want a Timeout of X-Request-Timeout 5s", cause)
	}

	for _, bad := range []string{"soon", "-1s", "0", strings.Repeat("1", 100)} {
		r := &Request{Ctx: &fasthttp.RequestCtx{}, State: &State{RequestTimeout: time.Minute}, Start: start}
		r.Ctx.Request.Header.Set(TimeoutHeader, bad)
		_, _, err := Deadline(r)
		var e *Error
		if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, TimeoutHeader) || len(e.Message) > 300 {
			t.Errorf("header %.40q: %v, want a 400 naming %s", bad, err, TimeoutHeader)
		}
	}
}

// TestErrorFromDeadlines maps the deadline errors: each names the setting
// the deadline came from and how to give the request more time.
func TestErrorFromDeadlines(t *testing.T) {
	st := &State{RequestTimeout: 30 * time.Second}
	header := &Timeout{Setting: TimeoutHeader, Timeout: 5 * time.Second}
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
	f(&engine.DeadlineError{Model: "m", Cause: header}, 504, "deadline_exceeded", 0,
		`queue of model "m"`, "(X-Request-Timeout 5s)", "ask for a longer X-Request-Timeout")
	f(&engine.DeadlineError{Model: "m", Cause: header, Ran: true}, 504, "deadline_exceeded", 0,
		`model "m" did not finish the request within X-Request-Timeout (5s) and stopped it`)
	f(&engine.DeadlineError{Model: "m", Cause: context.DeadlineExceeded, Ran: true}, 504, "deadline_exceeded", 0,
		"within server.request_timeout (30s)", "raise server.request_timeout")
	f(fmt.Errorf("x: %w", header), 504, "deadline_exceeded", 0, "did not finish within X-Request-Timeout (5s)")
	f(&engine.DeadlineError{Model: "m", Cause: ErrClientGone, Ran: true}, StatusClientClosed, "client_disconnected", 0, "closed the connection")
	f(ErrClientGone, StatusClientClosed, "client_disconnected", 0)
	f(&engine.AdmissionError{Model: "m", Estimated: 3500 * time.Millisecond, Wait: 3 * time.Second, Deadline: time.Second}, 503, "deadline", 3,
		`model "m" would take about 3.5s to answer (3s of it waiting for the work queued ahead), more than the 1s left`, "X-Request-Timeout")
	f(&engine.AdmissionError{Model: "m", Estimated: 2 * time.Millisecond, Deadline: time.Millisecond}, 503, "deadline", 1)
}

// TestModelTimeout: a model's own request_timeout replaces the server's,
// and messages name the setting that gave it.
func TestModelTimeout(t *testing.T) {
	st := &State{RequestTimeout: 30 * time.Second, ModelTimeouts: map[string]time.Duration{"slow": 2 * time.Minute}}
	if got := serverTimeout(&Request{State: st, Model: "slow"}); got.Timeout != 2*time.Minute || got.Setting != "models.slow.request_timeout" {
		t.Errorf("slow: %+v", got)
	}
	if got := serverTimeout(&Request{State: st, Model: "other"}); got.Timeout != 30*time.Second || got.Setting != "server.request_timeout" {
		t.Errorf("other: %+v", got)
	}
}
