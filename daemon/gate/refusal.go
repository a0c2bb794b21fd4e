package gate

import (
	"log/slog"
	"strconv"
	"unicode/utf8"
)

// Refusal is what every check returns when a request may not go on. It
// carries everything the edge needs for the JSON error, the metric and the
// log line, and never a secret: values the client sent are echoed only
// through echo, which caps and quotes them.
type Refusal struct {
	Status  int    // HTTP status
	Type    string // OpenAI-style error type
	Code    string // machine-readable reason for the client
	Message string
	// Param names the request field at fault, when one is.
	Param string
	// Reason is the metric label: one of a small fixed set.
	Reason string
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// Challenge, when set, is the WWW-Authenticate value of a 401.
	Challenge string
}

func (r *Refusal) Error() string { return r.Message }

// LogValue lets a Refusal be logged whole without its fields leaking
// anything the client does not already see.
func (r *Refusal) LogValue() slog.Value {
	if r == nil {
		return slog.Value{}
	}
	return slog.GroupValue(
		slog.Int("status", r.Status),
		slog.String("code", r.Code),
		slog.String("reason", r.Reason),
		slog.String("message", r.Message),
	)
}

// Error types, as OpenAI names them.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typePermission     = "permission_error"
	typeRateLimit      = "rate_limit_error"
)

func refuse(status int, typ, code, msg string) *Refusal {
	return &Refusal{Status: status, Type: typ, Code: code, Reason: code, Message: msg}
}

const bearerChallenge = `Bearer realm="aiassist"`

func unauthorized(code, msg string) *Refusal {
	r := refuse(401, typeAuthentication, code, msg)
	r.Challenge = bearerChallenge
	return r
}

// maxEcho caps any client value quoted back in a message.
const maxEcho = 64

// echo quotes a client-sent value for a message: at most maxEcho bytes,
// cut on a character boundary and marked with "…", control characters
// and invalid UTF-8 escaped by strconv.Quote.
func echo(s string) string {
	if len(s) > maxEcho {
		cut := maxEcho
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
