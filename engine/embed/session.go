package embed

import (
	"context"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// session is one ONNX Runtime session with the run options that can stop
// its run, as the tensor path's instance: ONNX Runtime checks the
// terminate flag between the nodes of a graph, so a run that no request
// waits for any more ends within a node.
type session struct {
	s *ort.DynamicAdvancedSession

	mu      sync.Mutex
	opts    *ort.RunOptions // nil if none could be made: runs cannot be stopped
	runs    uint64          // counts runs, so that a late stop cannot reach the next one
	live    bool
	stopped bool
}

func newSession(s *ort.DynamicAdvancedSession) *session {
	ss := &session{s: s}
	if o, err := ort.NewRunOptions(); err == nil {
		ss.opts = o
	}
	return ss
}

// run runs the session, and tells ONNX Runtime to terminate the run if
// ctx ends first. It reports whether it did, in which case err is ONNX
// Runtime's error for a terminated run.
func (ss *session) run(ctx context.Context, inputs, outputs []ort.Value) (stopped bool, err error) {
	ss.mu.Lock()
	ss.runs++
	n := ss.runs
	ss.live = true
	opts := ss.opts
	ss.mu.Unlock()
	stop := func() bool { return true }
	if opts != nil {
		stop = context.AfterFunc(ctx, func() {
			ss.mu.Lock()
			defer ss.mu.Unlock()
			if ss.live && ss.runs == n && !ss.stopped {
				ss.stopped = opts.Terminate() == nil
			}
		})
	}
	err = ss.s.RunWithOptions(inputs, outputs, opts)
	stop()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.live = false
	stopped, ss.stopped = ss.stopped, false
	if stopped && opts.UnsetTerminate() != nil {
		// Options that stay terminated would fail every later run.
		opts.Destroy()
		ss.opts = nil
	}
	return stopped, err
}

func (ss *session) destroy() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.opts != nil {
		ss.opts.Destroy()
		ss.opts = nil
	}
	ss.s.Destroy()
}
