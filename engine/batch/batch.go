// Package batch is a bounded request queue that groups compatible requests
// into batches, like Triton's dynamic batcher: a free worker takes the
// oldest request and every later one with the same key until the batch is
// full, waiting at most MaxQueueDelay for more when it is not.
//
// Unlike Triton, a worker waits only while recent batches were larger than
// what is queued now: a lone client gets no added delay, and after a burst
// the wait fades out within a few dozen batches.
//
// A running batch gets a context that ends once every request in it has
// ended (its deadline passed or its caller left): only then does no one
// want the result, so only then may the runner stop the work.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a submitter can get back; callers map them to statuses.
var (
	ErrQueueFull = errors.New("queue is full")
	ErrClosed    = errors.New("queue is closed")
	ErrExpired   = errors.New("deadline passed while queued")
)

// Options bound the queue and its batches.
type Options struct {
	// MaxBatchSize is the most rows one batch holds; 1 turns batching off.
	MaxBatchSize int
	// MaxQueueDelay is how long a free worker waits for a batch to fill.
	MaxQueueDelay time.Duration
	// MaxQueueSize is the most requests waiting; more are refused.
	MaxQueueSize int
}

// Runner runs one batch and returns one result per value, in order. ctx
// ends when the context of every value's Submit has ended; a runner may
// then stop early and return an error.
type Runner[T, R any] func(ctx context.Context, values []T) ([]R, error)

const (
	stateQueued int32 = iota
	stateRunning
	stateDone
)

type item[T, R any] struct {
	key      string
	rows     int
	value    T
	ctx      context.Context
	enqueued time.Time
	state    atomic.Int32
	done     chan struct{}
	result   R
	err      error
}

func (it *item[T, R]) finish(r R, err error) {
	it.result, it.err = r, err
	close(it.done)
}

// Queue holds requests until a worker takes them as a batch.
type Queue[T, R any] struct {
	opts    Options
	run     Runner[T, R]
	mu      sync.Mutex
	items   []*item[T, R]
	wake    chan struct{} // closed and replaced when items arrive or on close
	closed  bool
	retire  int // workers asked to leave: see RetireWorker
	workers sync.WaitGroup
	// recentRows holds the largest recent batch, fading by a tenth per
	// batch; waiting for a batch to fill only pays when recent batches
	// were larger. A peak that fades, rather than the last size, keeps
	// one small batch under load from locking the queue into small ones.
	recentRows float64
}

// New starts a queue with n workers, each running batches with run. A worker
// is one model instance, so n batches can run at once.
func New[T, R any](opts Options, workers int, run Runner[T, R]) *Queue[T, R] {
	if opts.MaxBatchSize < 1 {
		opts.MaxBatchSize = 1
	}
	if opts.MaxQueueSize < 1 {
		opts.MaxQueueSize = 1
	}
	q := &Queue[T, R]{opts: opts, run: run, wake: make(chan struct{})}
	for range max(workers, 1) {
		q.workers.Add(1)
		go q.work()
	}
	return q
}

// Len is the number of requests waiting.
func (q *Queue[T, R]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Submit queues value (rows rows; only values with equal keys share a batch)
// and waits for its result. If ctx ends while the value is still queued it
// is never run and Submit returns an error wrapping ErrExpired. Once its
// batch runs, Submit waits for the batch to end even if ctx ends, as the
// runner may still be reading value; the runner's context ends when every
// request of the batch has.
func (q *Queue[T, R]) Submit(ctx context.Context, key string, rows int, value T) (R, error) {
	var zero R
	it := &item[T, R]{key: key, rows: rows, value: value, ctx: ctx, enqueued: time.Now(), done: make(chan struct{})}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return zero, ErrClosed
	}
	if len(q.items) >= q.opts.MaxQueueSize {
		q.mu.Unlock()
		return zero, ErrQueueFull
	}
	q.items = append(q.items, it)
	q.signalLocked()
	q.mu.Unlock()

	select {
	case <-it.done:
		return it.result, it.err
	case <-ctx.Done():
		if it.state.CompareAndSwap(stateQueued, stateDone) {
			q.remove(it)
			return zero, fmt.Errorf("%w: %w", ErrExpired, context.Cause(ctx))
		}
		// A worker has it already: running requests finish.
		<-it.done
		return it.result, it.err
	}
}

func (q *Queue[T, R]) signalLocked() {
	close(q.wake)
	q.wake = make(chan struct{})
}

func (q *Queue[T, R]) remove(it *item[T, R]) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.items {
		if x == it {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

// Close refuses new requests, lets the workers run what is queued, and
// waits for them to finish.
func (q *Queue[T, R]) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		q.signalLocked()
	}
	q.mu.Unlock()
	q.workers.Wait()
}

func (q *Queue[T, R]) work() {
	defer q.workers.Done()
	for {
		batch := q.next()
		if batch == nil {
			return
		}
		values := make([]T, len(batch))
		ctxs := make([]context.Context, len(batch))
		for i, it := range batch {
			values[i] = it.value
			ctxs[i] = it.ctx
		}
		wanted := newWanted(ctxs)
		results, err := q.safeRun(wanted.ctx, values)
		wanted.stop()
		for i, it := range batch {
			var r R
			if err == nil {
				r = results[i]
			}
			it.finish(r, err)
		}
	}
}

// safeRun turns a panic in the runner into an error for the batch, so one
// bad batch cannot take the daemon down with it.
func (q *Queue[T, R]) safeRun(ctx context.Context, values []T) (results []R, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("batch runner panicked: %v", p)
		}
	}()
	results, err = q.run(ctx, values)
	if err == nil && len(results) != len(values) {
		err = fmt.Errorf("batch runner returned %d results for %d requests", len(results), len(values))
	}
	return results, err
}

// next blocks until it can hand out a batch, or returns nil once the queue
// is closed and empty.
func (q *Queue[T, R]) next() []*item[T, R] {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.retire > 0 {
			q.retire--
			return nil
		}
		q.dropExpiredLocked()
		if len(q.items) == 0 {
			if q.closed {
				return nil
			}
			wake := q.wake
			q.mu.Unlock()
			<-wake
			q.mu.Lock()
			continue
		}
		head := q.items[0]
		picked, rows := q.pickLocked(head)
		wait := head.enqueued.Add(q.opts.MaxQueueDelay).Sub(time.Now())
		if rows >= q.opts.MaxBatchSize || float64(rows) >= q.recentRows || q.closed || wait <= 0 {
			// Every picked request may have been cancelled meanwhile;
			// then look again.
			if batch := q.takeLocked(picked); len(batch) > 0 {
				return batch
			}
			continue
		}
		wake := q.wake
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		q.mu.Lock()
	}
}

// pickLocked chooses, in arrival order, the requests that share head's key
// and fit in one batch. A request larger than a batch runs on its own.
func (q *Queue[T, R]) pickLocked(head *item[T, R]) ([]int, int) {
	picked := []int{0}
	rows := head.rows
	for i := 1; i < len(q.items) && rows < q.opts.MaxBatchSize; i++ {
		it := q.items[i]
		if it.key != head.key {
			continue
		}
		if rows+it.rows > q.opts.MaxBatchSize {
			break
		}
		picked = append(picked, i)
		rows += it.rows
	}
	return picked, rows
}

func (q *Queue[T, R]) takeLocked(picked []int) []*item[T, R] {
	batch := make([]*item[T, R], 0, len(picked))
	keep := q.items[:0]
	j := 0
	for i, it := range q.items {
		if j < len(picked) && picked[j] == i {
			j++
			if it.state.CompareAndSwap(stateQueued, stateRunning) {
				batch = append(batch, it)
			}
			continue
		}
		keep = append(keep, it)
	}
	clear(q.items[len(keep):])
	q.items = keep
	rows := 0
	for _, it := range batch {
		rows += it.rows
	}
	q.recentRows = max(float64(rows), q.recentRows*0.9)
	return batch
}

// dropExpiredLocked answers requests whose deadline passed while queued,
// so they are never run.
func (q *Queue[T, R]) dropExpiredLocked() {
	keep := q.items[:0]
	for _, it := range q.items {
		if it.ctx.Err() != nil && it.state.CompareAndSwap(stateQueued, stateDone) {
			var zero R
			it.finish(zero, fmt.Errorf("%w: %w", ErrExpired, context.Cause(it.ctx)))
			continue
		}
		if it.state.Load() == stateDone {
			continue
		}
		keep = append(keep, it)
	}
	clear(q.items[len(keep):])
	q.items = keep
}

// ErrUnwanted is the cause of a running batch's context once every request
// in it has ended.
var ErrUnwanted = errors.New("every request of the batch has ended")

// wanted is a running batch's context: it ends when the last of the
// requests' contexts ends.
type wanted struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	left   atomic.Int32 // requests whose context has not ended
	stops  []func() bool
}

func newWanted(ctxs []context.Context) *wanted {
	w := &wanted{}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	w.left.Store(int32(len(ctxs)))
	for _, c := range ctxs {
		w.stops = append(w.stops, context.AfterFunc(c, func() {
			if w.left.Add(-1) == 0 {
				w.cancel(ErrUnwanted)
			}
		}))
	}
	return w
}

// stop releases the callbacks on the requests' contexts once the batch
// has run.
func (w *wanted) stop() {
	for _, s := range w.stops {
		s()
	}
	w.cancel(nil)
}
