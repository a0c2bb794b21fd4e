package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aiassist/aiassist/engine/batch"
)

// heldModel loads the demo model with one session and no batching, and
// takes its session out of the pool: a request the queue hands to the
// worker then waits for it, so nothing finishes until release is called.
func heldModel(t *testing.T, queueSize int) (m *TensorModel, release func()) {
	t.Helper()
	path, _ := demoModel(t, 0)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path, Batching: BatchOptions{MaxQueueSize: queueSize}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s := <-m.free
	var released bool
	release = func() {
		if !released {
			released = true
			m.free <- s
		}
	}
	t.Cleanup(release) // before Close, which waits for the queue
	return m, release
}

func demoInput() []Tensor {
	return []Tensor{{Name: "input", DataType: FP32, Shape: []int64{1, 4}, Data: make([]byte, 16)}}
}

// collect waits for n results, failing the test after a minute.
func collect(t *testing.T, results <-chan error, n int) []error {
	t.Helper()
	var errs []error
	for range n {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-time.After(time.Minute):
			t.Fatalf("gave up waiting for %d results after %d", n, len(errs))
		}
	}
	return errs
}

// TestQueueFullIsLimitError fills a queue of one while the only session
// is held: of three requests at most two are pending (one in the worker,
// one queued), so one at least is refused, with a *LimitError naming the
// model and batching.max_queue_size.
func TestQueueFullIsLimitError(t *testing.T) {
	m, release := heldModel(t, 1)
	results := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := m.Infer(context.Background(), demoInput(), nil)
			results <- err
		}()
	}
	// Nothing can succeed while the session is held: the first answer is
	// a refusal.
	first := collect(t, results, 1)[0]
	release()
	refused := 0
	for _, err := range append(collect(t, results, 2), first) {
		if err == nil {
			continue
		}
		refused++
		var limit *LimitError
		if !errors.As(err, &limit) || limit.Model != "demo" || limit.Setting != "batching.max_queue_size" || limit.Limit != 1 || !errors.Is(err, ErrQueueFull) || errors.Is(err, batch.ErrQueueFull) {
			t.Errorf("err = %v (%#v), want a LimitError for demo's batching.max_queue_size 1", err, limit)
		}
	}
	if first == nil || refused == 0 {
		t.Errorf("first answer %v, %d refused; want the first refused", first, refused)
	}
}

// TestQueuedDeadlineIsDeadlineError queues two requests with a short
// deadline while the only session is held: the worker holds at most one,
// so the other's deadline passes while it is queued and it gets a
// *DeadlineError naming the model, wrapping ErrExpired and the context's
// error; it is never run.
func TestQueuedDeadlineIsDeadlineError(t *testing.T) {
	m, release := heldModel(t, 8)
	results := make(chan error, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, err := m.Infer(ctx, demoInput(), nil)
			results <- err
		}()
	}
	first := collect(t, results, 1)[0]
	release()
	second := collect(t, results, 1)[0]
	for _, err := range []error{first, second} {
		if err == nil {
			continue // the one the worker held runs once the session is back
		}
		// The held one may also run past its deadline (its goroutine
		// started late): then its DeadlineError says it ran.
		var dl *DeadlineError
		if !errors.As(err, &dl) || dl.Model != "demo" || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, batch.ErrExpired) ||
			errors.Is(err, ErrExpired) == dl.Ran || errors.Is(err, ErrStopped) != dl.Ran {
			t.Errorf("err = %v, want a DeadlineError for demo wrapping context.DeadlineExceeded", err)
		}
	}
	if first == nil {
		t.Error("a request finished while the session was held")
	}
}

// TestDefaultQueueLimit reports the queue size the model really has when
// the options leave it to the default.
func TestDefaultQueueLimit(t *testing.T) {
	path, _ := demoModel(t, 0)
	m, err := LoadTensorModel(rt, TensorModelOptions{Name: "demo", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var limit *LimitError
	if err := m.queueError(context.Background(), batch.ErrQueueFull); !errors.As(err, &limit) || limit.Limit != 1024 {
		t.Errorf("err = %v, want a LimitError with the default limit 1024", err)
	}
}
