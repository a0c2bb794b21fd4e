package batch

// Workers come and go as a model's instances do: a worker is added once
// its instance is ready, and one leaves between batches, never in one.

// AddWorker starts one more worker. It does nothing on a closed queue.
func (q *Queue[T, R]) AddWorker() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.retire > 0 {
		// A worker asked to leave has not yet: it stays instead.
		q.retire--
		return
	}
	q.workers.Add(1)
	go q.work()
}

// RetireWorker asks one worker to leave once it has run its batch, or at
// once if it is idle. The caller keeps at least one worker; queued
// requests wait for the others.
func (q *Queue[T, R]) RetireWorker() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.retire++
	q.signalLocked()
}
