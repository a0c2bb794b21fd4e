package engine

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors a caller maps to responses. Validation errors wrap
// ErrInvalidInput; a refusal because a configured bound was reached is a
// *LimitError, which wraps ErrQueueFull; a deadline that passed before the
// work ran is a *DeadlineError, which wraps ErrExpired.
var (
	ErrInvalidInput = errors.New("invalid input")
	ErrQueueFull    = errors.New("queue is full")
	ErrExpired      = errors.New("deadline passed before the work ran")
	ErrClosed       = errors.New("model is closed")
)

// LimitError says which model refused work and which of its settings
// bounded it, so that an API can answer with a message an operator acts on
// without parsing error strings.
type LimitError struct {
	Model string
	// Setting is the model's config field that was exhausted, as the
	// config spells it: "batching.max_queue_size" for a tensor model,
	// "max_queue" for a causal-lm model.
	Setting string
	// Limit is that setting's value.
	Limit int
	// Detail says what was busy, e.g. "8 generations running"; may be "".
	Detail string
}

func (e *LimitError) Error() string {
	s := "model " + strconv.Quote(e.Model) + ": queue is full (" + e.Setting + " " + strconv.Itoa(e.Limit)
	if e.Detail != "" {
		s += ", " + e.Detail
	}
	return s + ")"
}

// Unwrap makes errors.Is(err, ErrQueueFull) hold.
func (e *LimitError) Unwrap() error { return ErrQueueFull }

// DeadlineError is work whose deadline passed while it waited, so it was
// never run.
type DeadlineError struct {
	Model string
	Cause error // the context's cause, usually context.DeadlineExceeded
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("model %q: the deadline passed while the request was queued: %v", e.Model, e.Cause)
}

// Unwrap makes errors.Is hold for ErrExpired and for the cause.
func (e *DeadlineError) Unwrap() []error { return []error{ErrExpired, e.Cause} }

var _ error = (*LimitError)(nil)
