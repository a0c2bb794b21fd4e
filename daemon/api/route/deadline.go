package route

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// TimeoutHeader is the header a client asks for a shorter deadline with:
// a Go duration ("5s", "1.5s", "500ms") or plain seconds ("5", "1.5").
// More than the server's timeout is cut to it.
const TimeoutHeader = "X-Request-Timeout"

// ErrClientGone is the cause of a request's context when its client closed
// the connection before the answer was ready.
var ErrClientGone = errors.New("the client closed the connection")

// Timeout is the cause of a request's context when its deadline passes: it
// says which setting the deadline came from, so that the answer names what
// to change. It matches context.DeadlineExceeded.
type Timeout struct {
	// Setting is "server.request_timeout" or TimeoutHeader.
	Setting string
	Timeout time.Duration
}

func (t *Timeout) Error() string {
	return fmt.Sprintf("the request's deadline (%s %s) passed", t.Setting, t.Timeout)
}

// Is makes errors.Is(t, context.DeadlineExceeded) hold.
func (t *Timeout) Is(target error) bool { return target == context.DeadlineExceeded }

// setting is how a message names the deadline: "server.request_timeout
// 30s".
func (t *Timeout) setting() string { return t.Setting + " " + t.Timeout.String() }

// remedy says how to give a request more time.
func (t *Timeout) remedy() string {
	if t.Setting == TimeoutHeader {
		return "ask for a longer " + TimeoutHeader
	}
	return "raise " + t.Setting
}

// serverTimeout is the most time a request of r's model may take.
func serverTimeout(r *Request) *Timeout {
	if d, ok := r.State.ModelTimeouts[r.Model]; ok && d > 0 {
		return &Timeout{Setting: "models." + r.Model + ".request_timeout", Timeout: d}
	}
	return &Timeout{Setting: "server.request_timeout", Timeout: r.State.RequestTimeout}
}

// Deadline returns the context a request's work runs under: it ends at
// the request's deadline, counted from its arrival, with a *Timeout as its
// cause. The deadline is the server's request timeout, or less if the
// client asks with TimeoutHeader; a bad header value is a 400 that names
// the header. A timeout of 0 is none.
func Deadline(r *Request) (context.Context, context.CancelFunc, error) {
	t := serverTimeout(r)
	if v := r.Ctx.Request.Header.Peek(TimeoutHeader); v != nil {
		d, ok := parseTimeout(string(v))
		if !ok {
			return nil, nil, BadRequest(fmt.Sprintf(`%s must be a positive duration such as "5s" or "500ms", or a number of seconds such as "1.5"; got %s`, TimeoutHeader, Quote(string(v))))
		}
		if t.Timeout <= 0 || d < t.Timeout {
			t = &Timeout{Setting: TimeoutHeader, Timeout: d}
		}
	}
	if t.Timeout <= 0 {
		ctx, cancel := context.WithCancel(context.Background())
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithDeadlineCause(context.Background(), r.Start.Add(t.Timeout), t)
	return ctx, cancel, nil
}

// maxTimeout bounds a header's value, so that a huge number cannot
// overflow a time.Duration; any server timeout is shorter.
const maxTimeout = 1000 * time.Hour

// parseTimeout reads a TimeoutHeader value: a Go duration, or plain
// decimal seconds. It must be more than 0.
func parseTimeout(v string) (time.Duration, bool) {
	if len(v) > 32 {
		return 0, false
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, d > 0 && d <= maxTimeout
	}
	dots := 0
	for _, c := range v {
		switch {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return 0, false
		}
	}
	if dots > 1 || v == "" || v == "." {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > maxTimeout.Seconds() {
		return 0, false
	}
	d := time.Duration(f * float64(time.Second))
	return d, d > 0
}
