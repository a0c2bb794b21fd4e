package engine

// QueueDepth is the number of requests waiting to run, as
// aiassist_queue_depth reports it.
func (m *TensorModel) QueueDepth() int { return m.queue.Len() }
