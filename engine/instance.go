package engine

import (
	"context"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Session is one ONNX Runtime session with the run options that can stop
// its run (a tensor model's instance, an embedding model's session): ONNX Runtime checks the options' terminate flag between the
// nodes of a graph (and the iterations of a loop), so a run nobody waits
// for any more ends within one node instead of running to its end.
type Session struct {
	sess *ort.DynamicAdvancedSession

	mu      sync.Mutex
	opts    *ort.RunOptions // nil if none could be made: runs cannot be stopped
	runs    uint64          // counts runs, so that a late stop cannot reach the next one
	live    bool            // a run is in progress
	stopped bool            // the live run was told to terminate
}

// NewSession wraps s; Destroy destroys it.
func NewSession(s *ort.DynamicAdvancedSession) *Session {
	in := &Session{sess: s}
	if o, err := ort.NewRunOptions(); err == nil {
		in.opts = o
	}
	return in
}

// Run runs the session; if ctx ends before the run does, ONNX Runtime is
// told to terminate it. It reports whether it was, in which case err is
// ONNX Runtime's error for a terminated run.
func (in *Session) Run(ctx context.Context, inputs, outputs []ort.Value) (stopped bool, err error) {
	in.mu.Lock()
	in.runs++
	n := in.runs
	in.live = true
	opts := in.opts
	in.mu.Unlock()
	stop := func() bool { return true }
	if opts != nil {
		stop = context.AfterFunc(ctx, func() {
			in.mu.Lock()
			defer in.mu.Unlock()
			if in.live && in.runs == n && !in.stopped {
				in.stopped = opts.Terminate() == nil
			}
		})
	}
	err = in.sess.RunWithOptions(inputs, outputs, opts)
	stop()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.live = false
	stopped, in.stopped = in.stopped, false
	if stopped && opts.UnsetTerminate() != nil {
		// Options that stay terminated would fail every later run; run
		// without any rather than fail them.
		opts.Destroy()
		in.opts = nil
	}
	return stopped, err
}

// Destroy destroys the session and its run options.
func (in *Session) Destroy() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.opts != nil {
		in.opts.Destroy()
		in.opts = nil
	}
	in.sess.Destroy()
}

// NewSessionOptions returns session options with the intra-op and
// inter-op thread counts every model kind opens its sessions with (at
// least 1 each). The caller destroys them.
func NewSessionOptions(intraOp, interOp int) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	if err := so.SetIntraOpNumThreads(max(intraOp, 1)); err != nil {
		so.Destroy()
		return nil, err
	}
	if err := so.SetInterOpNumThreads(max(interOp, 1)); err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}
