package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBatchesFormAndResultsReturnInOrder(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	gate := make(chan struct{})
	var received atomic.Int32
	q := New(Options{MaxBatchSize: 8, MaxQueueDelay: 50 * time.Millisecond, MaxQueueSize: 100}, 1,
		func(_ context.Context, v []int) ([]int, error) {
			received.Add(int32(len(v)))
			<-gate
			mu.Lock()
			sizes = append(sizes, len(v))
			mu.Unlock()
			out := make([]int, len(v))
			for i, x := range v {
				out[i] = x * 10
			}
			return out, nil
		})
	defer q.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := q.Submit(context.Background(), "k", 1, i)
			if err != nil || got != i*10 {
				t.Errorf("Submit(%d) = %d, %v; want %d", i, got, err, i*10)
			}
		}()
	}
	for q.Len()+int(received.Load()) < 16 { // the worker holds one batch, the rest wait
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	biggest := 0
	for _, s := range sizes {
		biggest = max(biggest, s)
		if s > 8 {
			t.Fatalf("batch of %d exceeds MaxBatchSize 8", s)
		}
	}
	if biggest < 2 {
		t.Fatalf("no batch larger than 1: %v", sizes)
	}
}

func TestKeysDoNotMix(t *testing.T) {
	q := New(Options{MaxBatchSize: 8, MaxQueueDelay: 20 * time.Millisecond, MaxQueueSize: 100}, 1,
		func(_ context.Context, v []string) ([]string, error) {
			for _, x := range v {
				if x != v[0] {
					return nil, errors.New("mixed keys in one batch")
				}
			}
			return v, nil
		})
	defer q.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			if _, err := q.Submit(context.Background(), key, 1, key); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestFullQueueRefuses(t *testing.T) {
	block := make(chan struct{})
	running := make(chan struct{}, 1)
	q := New(Options{MaxBatchSize: 1, MaxQueueSize: 2}, 1, func(_ context.Context, v []int) ([]int, error) {
		running <- struct{}{}
		<-block
		return v, nil
	})
	defer q.Close()
	go q.Submit(context.Background(), "", 1, 0)
	<-running // the worker holds request 0
	go q.Submit(context.Background(), "", 1, 1)
	go q.Submit(context.Background(), "", 1, 2)
	for q.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := q.Submit(context.Background(), "", 1, 3); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	close(block)
	for range 2 {
		<-running
	}
}

func TestExpiredRequestIsNeverRun(t *testing.T) {
	block := make(chan struct{})
	running := make(chan struct{}, 1)
	var ran atomic.Int32
	q := New(Options{MaxBatchSize: 1, MaxQueueSize: 10}, 1, func(_ context.Context, v []int) ([]int, error) {
		if v[0] == 2 {
			ran.Add(1)
		}
		running <- struct{}{}
		<-block
		return v, nil
	})
	go q.Submit(context.Background(), "", 1, 1)
	<-running // the only worker is busy with request 1
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := q.Submit(ctx, "", 1, 2)
	if !errors.Is(err, ErrExpired) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrExpired wrapping DeadlineExceeded", err)
	}
	close(block)
	q.Close()
	if ran.Load() != 0 {
		t.Fatal("an expired request was run")
	}
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	q := New(Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour, MaxQueueSize: 10}, 2,
		func(_ context.Context, v []int) ([]int, error) { return v, nil })
	// A full batch first, so that smaller ones wait for company.
	if _, err := q.Submit(context.Background(), "", 4, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := q.Submit(context.Background(), "", 1, i); err != nil || got != i {
				t.Errorf("got %d, %v", got, err)
			}
		}()
	}
	for q.Len() < 3 {
		time.Sleep(time.Millisecond)
	}
	q.Close() // must not wait out the delay
	wg.Wait()
	if _, err := q.Submit(context.Background(), "", 1, 9); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestRunnerPanicBecomesError(t *testing.T) {
	q := New(Options{MaxBatchSize: 1, MaxQueueSize: 1}, 1, func(_ context.Context, v []int) ([]int, error) { panic("boom") })
	defer q.Close()
	if _, err := q.Submit(context.Background(), "", 1, 1); err == nil {
		t.Fatal("want an error from a panicking runner")
	}
}

// A lone client must not wait out the queue delay: with nothing else
// queued and no larger batch before, its request is dispatched at once.
func TestLoneRequestDoesNotWait(t *testing.T) {
	q := New(Options{MaxBatchSize: 8, MaxQueueDelay: time.Hour, MaxQueueSize: 10}, 1,
		func(_ context.Context, v []int) ([]int, error) { return v, nil })
	defer q.Close()
	for i := range 3 {
		if got, err := q.Submit(context.Background(), "", 1, i); err != nil || got != i {
			t.Fatalf("got %d, %v", got, err)
		}
	}
}

// TestBatchContextEndsWithItsLastRequest checks the context a running
// batch gets: it stays live while any of its requests' contexts is, and
// ends, with ErrUnwanted as its cause, once the last one has.
func TestBatchContextEndsWithItsLastRequest(t *testing.T) {
	a, cancelA := context.WithCancel(context.Background())
	b, cancelB := context.WithCancel(context.Background())
	defer cancelA()
	defer cancelB()
	w := newWanted([]context.Context{a, b, context.Background()})
	defer w.stop()
	// Background never ends: it counts as a request that still wants
	// the result, so this batch's context never ends on its own.
	cancelA()
	cancelB()
	waitUntil(t, "both callbacks", func() bool { return w.left.Load() == 1 })
	if err := w.ctx.Err(); err != nil {
		t.Fatalf("the batch context ended with a request still waiting: %v", err)
	}

	c, cancelC := context.WithCancel(context.Background())
	d, cancelD := context.WithCancel(context.Background())
	defer cancelD()
	w2 := newWanted([]context.Context{c, d})
	defer w2.stop()
	cancelC()
	waitUntil(t, "the first callback", func() bool { return w2.left.Load() == 1 })
	if err := w2.ctx.Err(); err != nil {
		t.Fatalf("the batch context ended with one of two requests left: %v", err)
	}
	cancelD()
	select {
	case <-w2.ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the batch context did not end after its last request")
	}
	if cause := context.Cause(w2.ctx); !errors.Is(cause, ErrUnwanted) {
		t.Errorf("cause %v, want ErrUnwanted", cause)
	}
}

// TestRunnerSeesRequestsEnd runs a batch of two requests whose runner
// waits for its context: it ends only when both callers' deadlines have
// passed, and both get the runner's error.
func TestRunnerSeesRequestsEnd(t *testing.T) {
	started := make(chan struct{})
	q := New(Options{MaxBatchSize: 2, MaxQueueDelay: time.Hour, MaxQueueSize: 10}, 1,
		func(ctx context.Context, v []int) ([]int, error) {
			if v[0] < 0 {
				return v, nil
			}
			close(started)
			<-ctx.Done()
			return nil, context.Cause(ctx)
		})
	defer q.Close()
	// A batch of two rows first, so that the queue waits for a second
	// request before running the next batch.
	if _, err := q.Submit(context.Background(), "k", 2, -1); err != nil {
		t.Fatal(err)
	}
	ctxs := make([]context.CancelFunc, 2)
	errs := make(chan error, 2)
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		go func() {
			_, err := q.Submit(ctx, "k", 1, i)
			errs <- err
		}()
	}
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the batch did not start")
	}
	for _, cancel := range ctxs {
		cancel()
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrUnwanted) {
				t.Errorf("err %v, want the runner's ErrUnwanted", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Submit did not return after its batch was stopped")
		}
	}
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
