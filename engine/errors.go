package engine

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Errors a caller maps to responses. Validation errors wrap
// ErrInvalidInput; a refusal because a configured bound was reached is a
// *LimitError, which wraps ErrQueueFull; a deadline that passed before the
// work ran is a *DeadlineError, which wraps ErrExpired, and one that passed
// while it ran a *DeadlineError wrapping ErrStopped; work refused at once
// because it cannot finish before its deadline is an *AdmissionError,
// which wraps ErrDeadlineUnreachable.
var (
	ErrInvalidInput        = errors.New("invalid input")
	ErrQueueFull           = errors.New("queue is full")
	ErrExpired             = errors.New("deadline passed before the work ran")
	ErrStopped             = errors.New("deadline passed while the work ran; it was stopped")
	ErrDeadlineUnreachable = errors.New("the work cannot finish before its deadline")
	ErrClosed              = errors.New("model is closed")
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
// never run, or, with Ran, while it ran, so it was stopped.
type DeadlineError struct {
	Model string
	Cause error // the context's cause, usually context.DeadlineExceeded
	// Ran says the work had started: ONNX Runtime was running it (it is
	// terminated once no request of its batch still wants the result) or,
	// for a generation, tokens were being made.
	Ran bool
}

func (e *DeadlineError) Error() string {
	if e.Ran {
		return fmt.Sprintf("model %q: the deadline passed while the request ran: %v", e.Model, e.Cause)
	}
	return fmt.Sprintf("model %q: the deadline passed while the request was queued: %v", e.Model, e.Cause)
}

// Unwrap makes errors.Is hold for ErrExpired (or ErrStopped, with Ran)
// and for the cause.
func (e *DeadlineError) Unwrap() []error {
	if e.Ran {
		return []error{ErrStopped, e.Cause}
	}
	return []error{ErrExpired, e.Cause}
}

// AdmissionError is work refused before it was queued: by the model's
// measured service time and the work queued ahead of it, it would finish
// after its deadline, so it is refused at once rather than run to time out.
type AdmissionError struct {
	Model string
	// Estimated is how long from now the work would take: Wait, for the
	// work queued ahead, plus its own service time.
	Estimated time.Duration
	Wait      time.Duration
	// Deadline is how long the work had left until its deadline.
	Deadline time.Duration
}

func (e *AdmissionError) Error() string {
	s := fmt.Sprintf("model %q would take about %s to answer", e.Model, roundDuration(e.Estimated))
	if e.Wait > 0 {
		s += fmt.Sprintf(" (%s of it waiting for the work queued ahead)", roundDuration(e.Wait))
	}
	return s + fmt.Sprintf(", more than the %s left before the request's deadline", roundDuration(max(e.Deadline, 0)))
}

// Unwrap makes errors.Is(err, ErrDeadlineUnreachable) hold.
func (e *AdmissionError) Unwrap() error { return ErrDeadlineUnreachable }

// roundDuration keeps a duration readable in a message: milliseconds, or
// microseconds below one.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

var (
	_ error = (*LimitError)(nil)
	_ error = (*DeadlineError)(nil)
	_ error = (*AdmissionError)(nil)
)
