package engine

import (
	"context"
	"sync"
	"time"
)

// Deadline-aware admission: a model measures how long its work takes, and
// a request whose deadline comes before the work queued ahead of it and its
// own could be done is refused at once, instead of waiting to time out.
// The estimates lean low on purpose (they leave out what a running batch
// still needs, and round the work queued ahead down to whole rounds), so
// that a refusal means the request had no real chance.

// MinSamples is how many measurements an estimate needs before it may
// refuse work: a model just loaded, or one that has run little, is never
// refused on a guess.
const MinSamples = 16

// serviceWeight is the weight of the newest measurement in the moving
// average: about the last twenty measurements count.
const serviceWeight = 0.1

// ServiceTime is an exponentially weighted moving average of how long a
// unit of work takes (a tensor model's batch, a generation's token). It is
// safe for concurrent use; the zero value is ready.
type ServiceTime struct {
	mu  sync.Mutex
	avg float64 // seconds
	n   int
}

// Observe adds a measurement.
func (s *ServiceTime) Observe(d time.Duration) {
	v := max(d.Seconds(), 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		s.avg = v
	} else {
		s.avg += serviceWeight * (v - s.avg)
	}
	if s.n < MinSamples {
		s.n++
	}
}

// Estimate returns the average and whether it rests on MinSamples
// measurements or more.
func (s *ServiceTime) Estimate() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.avg * float64(time.Second)), s.n >= MinSamples
}

// CheckDeadline returns an *AdmissionError when work that would wait wait
// and then take service ends after ctx's deadline; nil when it would not,
// or when ctx has no deadline.
func CheckDeadline(ctx context.Context, model string, wait, service time.Duration) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(deadline)
	if est := wait + service; est > left {
		return &AdmissionError{Model: model, Estimated: est, Wait: wait, Deadline: left}
	}
	return nil
}
