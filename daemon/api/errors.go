package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/engine"
)

// Error is the one error type that carries an HTTP status. Handlers return
// it; everything else is mapped by errorFrom at the edge.
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
}

func (e *Error) Error() string { return e.Message }

func newError(status int, typ, code, msg string) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: msg}
}

func badRequest(msg string) *Error {
	return newError(fasthttp.StatusBadRequest, "invalid_request_error", "invalid_input", msg)
}

func modelNotFound(name string) *Error {
	return newError(fasthttp.StatusNotFound, "not_found_error", "model_not_found", "model "+strconv.Quote(name)+" is not served; GET /v1/models lists the models")
}

// errorFrom maps engine and context errors to statuses.
func errorFrom(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, engine.ErrInvalidInput):
		return badRequest(err.Error())
	case errors.Is(err, engine.ErrQueueFull):
		e := newError(fasthttp.StatusServiceUnavailable, "overloaded_error", "queue_full", "the model's queue is full; retry later or raise batching.max_queue_size")
		e.RetryAfter = 1
		return e
	case errors.Is(err, engine.ErrExpired), errors.Is(err, context.DeadlineExceeded):
		return newError(fasthttp.StatusGatewayTimeout, "timeout_error", "deadline_exceeded", "the request waited longer than its deadline (server.request_timeout) and was not run")
	case errors.Is(err, engine.ErrClosed):
		e := newError(fasthttp.StatusServiceUnavailable, "overloaded_error", "model_unavailable", "the model is being unloaded; retry")
		e.RetryAfter = 1
		return e
	}
	return newError(fasthttp.StatusInternalServerError, "server_error", "internal_error", err.Error())
}

type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
		Param   string `json:"param,omitempty"`
	} `json:"error"`
}

func writeError(ctx *fasthttp.RequestCtx, e *Error) {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code, b.Error.Param = e.Message, e.Type, e.Code, e.Param
	body, _ := json.Marshal(b)
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType("application/json")
	if e.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	ctx.SetBody(body)
}
