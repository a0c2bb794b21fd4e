package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
)

// StatusClientClosed is nginx's 499: the client closed the connection
// before the answer was ready. It is never sent; the access log and the
// metrics record it.
const StatusClientClosed = 499

// Error is the one error type that carries an HTTP status. Routes return
// it; everything else is mapped by ErrorFrom at the edge.
type Error struct {
	Status  int
	Type    string // OpenAI-style error type
	Code    string // short machine-readable reason, also the metric label
	Message string
	// Param names the request field at fault, as OpenAI's errors do; ""
	// leaves it out.
	Param string
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// Headers are sent with the error, e.g. WWW-Authenticate or the
	// x-ratelimit-* headers.
	Headers [][2]string
}

func (e *Error) Error() string { return e.Message }

// FromRefusal is the gate's refusal as the API's error.
func FromRefusal(r *gate.Refusal) *Error {
	e := &Error{Status: r.Status, Type: r.Type, Code: r.Code, Message: r.Message, Param: r.Param, RetryAfter: r.RetryAfter}
	if r.Challenge != "" {
		e.Headers = append(e.Headers, [2]string{"WWW-Authenticate", r.Challenge})
	}
	return e
}

// FromLimit is the rate limits' refusal as the API's error, with
// Retry-After and OpenAI's x-ratelimit-* headers.
func FromLimit(r *limit.Refusal) *Error {
	e := &Error{Status: r.Status, Type: r.Type, Code: r.Code, Message: r.Message}
	r.VisitHeaders(func(name string, value []byte) {
		e.Headers = append(e.Headers, [2]string{name, string(value)})
	})
	return e
}

// NewError returns an Error.
func NewError(status int, typ, code, msg string) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: msg}
}

// BadRequest is a 400 for input the route refuses.
func BadRequest(msg string) *Error {
	return NewError(fasthttp.StatusBadRequest, "invalid_request_error", "invalid_input", msg)
}

// ParamError is a 400 that names the request field at fault.
func ParamError(param, msg string) *Error {
	e := BadRequest(msg)
	e.Param = Echo(param)
	return e
}

// NoRoute is the one answer for a path that no route serves.
func NoRoute(path string) *Error {
	return NewError(fasthttp.StatusNotFound, "not_found_error", "not_found", "no route for "+Quote(path))
}

// ModelNotFound is the 404 for a model name that no route of the
// protocol serves; seeElse says where to look instead, e.g. "GET /v1/models
// lists the models".
func ModelNotFound(name, seeElse string) *Error {
	return NewError(fasthttp.StatusNotFound, "not_found_error", "model_not_found", "model "+Quote(name)+" is not served; "+seeElse)
}

// ErrorFrom maps any error a route returns to its response, by type: the
// engine's typed errors name the model and the setting an operator can
// change, so the message does too.
func ErrorFrom(err error, st *State) *Error {
	var (
		e         *Error
		limit     *engine.LimitError
		deadline  *engine.DeadlineError
		admission *engine.AdmissionError
		tooLong   *embed.TooLongError
	)
	// The deadline a message names: the request's own, if its cause
	// says, else the server's.
	timeout := &Timeout{Setting: "server.request_timeout", Timeout: st.RequestTimeout}
	errors.As(err, &timeout)
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrClientGone):
		// Nobody reads this answer; the access log and metrics do.
		return NewError(StatusClientClosed, "client_error", "client_disconnected", "the client closed the connection before the answer was ready")
	case errors.As(err, &admission):
		e := NewError(fasthttp.StatusServiceUnavailable, "overloaded_error", "deadline",
			clip(admission.Error(), maxMessage)+"; retry later, ask for a longer deadline ("+TimeoutHeader+"), or add instances of the model")
		// About when the work ahead has gone down by what was missing.
		e.RetryAfter = max(1, int(math.Ceil((admission.Estimated - admission.Deadline).Seconds())))
		return e
	case errors.As(err, &limit):
		e := NewError(fasthttp.StatusServiceUnavailable, "overloaded_error", "queue_full",
			clip(limit.Error(), maxMessage)+"; retry later, or raise "+limit.Setting+" of model "+strconv.Quote(limit.Model))
		e.RetryAfter = 1
		return e
	case errors.Is(err, engine.ErrQueueFull):
		e := NewError(fasthttp.StatusServiceUnavailable, "overloaded_error", "queue_full", "the model's queue is full; retry later")
		e.RetryAfter = 1
		return e
	case errors.As(err, &deadline) && deadline.Ran:
		return NewError(fasthttp.StatusGatewayTimeout, "timeout_error", "deadline_exceeded", fmt.Sprintf(
			"model %q did not finish the request within %s (%s) and stopped it; ask for less (fewer max_tokens), or %s",
			deadline.Model, timeout.Setting, timeout.Timeout, timeout.remedy()))
	case deadline != nil:
		return NewError(fasthttp.StatusGatewayTimeout, "timeout_error", "deadline_exceeded", fmt.Sprintf(
			"the request waited in the queue of model %q past its deadline (%s) and was not run; retry later, or %s or the model's instances",
			deadline.Model, timeout.setting(), timeout.remedy()))
	case errors.Is(err, engine.ErrExpired):
		return NewError(fasthttp.StatusGatewayTimeout, "timeout_error", "deadline_exceeded", fmt.Sprintf(
			"the request waited in the queue past its deadline (%s) and was not run; retry later or %s", timeout.setting(), timeout.remedy()))
	case errors.Is(err, context.DeadlineExceeded):
		return NewError(fasthttp.StatusGatewayTimeout, "timeout_error", "deadline_exceeded", fmt.Sprintf(
			"the request did not finish within %s (%s); ask for less (fewer max_tokens) or %s", timeout.Setting, timeout.Timeout, timeout.remedy()))
	case errors.Is(err, engine.ErrClosed):
		e := NewError(fasthttp.StatusServiceUnavailable, "overloaded_error", "model_unavailable", "the model is being unloaded by a reload; retry")
		e.RetryAfter = 1
		return e
	case errors.As(err, &tooLong):
		e := ParamError("input", clip(tooLong.Error(), maxMessage))
		e.Code = "input_too_long"
		return e
	case errors.Is(err, engine.ErrInvalidInput):
		// The engine's messages may quote request values (a role, an
		// output name), so they are bounded here.
		return BadRequest(clip(err.Error(), maxMessage))
	}
	return NewError(fasthttp.StatusInternalServerError, "server_error", "internal_error", clip(err.Error(), maxMessage))
}

// body is an error as JSON, the same in a response body and in an event.
func (e *Error) body() []byte {
	var b struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
			Param   string `json:"param,omitempty"`
		} `json:"error"`
	}
	b.Error.Message, b.Error.Type, b.Error.Code, b.Error.Param = e.Message, e.Type, e.Code, e.Param
	out, _ := json.Marshal(b)
	return out
}

// WriteError answers with e.
func WriteError(ctx *fasthttp.RequestCtx, e *Error) {
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType("application/json")
	if e.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	for _, h := range e.Headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
	ctx.SetBody(e.body())
}
