package engine

import (
	"context"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// instance is one ONNX Runtime session with the run options that can stop
// its run: ONNX Runtime checks the options' terminate flag between the
// nodes of a graph (and the iterations of a loop), so a run nobody waits
// for any more ends within one node instead of running to its end.
type instance struct {
	sess *ort.DynamicAdvancedSession

	mu      sync.Mutex
	opts    *ort.RunOptions // nil if none could be made: runs cannot be stopped
	runs    uint64          // counts runs, so that a late stop cannot reach the next one
	live    bool            // a run is in progress
	stopped bool            // the live run was told to terminate
}

func newInstance(s *ort.DynamicAdvancedSession) *instance {
	in := &instance{sess: s}
	if o, err := ort.NewRunOptions(); err == nil {
		in.opts = o
	}
	return in
}

// run runs the session; if ctx ends before the run does, ONNX Runtime is
// told to terminate it. It reports whether it was, in which case err is
// ONNX Runtime's error for a terminated run.
func (in *instance) run(ctx context.Context, inputs, outputs []ort.Value) (stopped bool, err error) {
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

func (in *instance) destroy() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.opts != nil {
		in.opts.Destroy()
		in.opts = nil
	}
	in.sess.Destroy()
}
