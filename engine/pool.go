package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// A tensor model's instances can change while it serves. An instance is
// added only once its session has run one inference, so the first request
// it takes does not pay for ONNX Runtime's lazy initialisation, and a
// session that cannot run never takes one; it is removed only once it is
// idle, after the queue has one worker fewer, so no request is cut short
// or fails.

// tensorPool serialises the changes of a model's instances.
type tensorPool struct {
	resize sync.Mutex // held by AddInstance, RemoveInstance and close
	closed bool       // under resize

	mu sync.Mutex // guards TensorModel.instances
}

func (p *tensorPool) close() {
	p.resize.Lock()
	defer p.resize.Unlock()
	p.closed = true
}

// ErrInstanceBounds is the error of an AddInstance past MaxInstances or a
// RemoveInstance of the last instance.
var ErrInstanceBounds = errors.New("instance count out of bounds")

// Instances is the number of instances serving now.
func (m *TensorModel) Instances() int {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	return len(m.instances)
}

// QueueDepth is the number of requests waiting to run.
func (m *TensorModel) QueueDepth() int { return m.queue.Len() }

// AddInstance opens one more session, warms it with an inference on a
// zero input (of batch 1; not when an input has another dynamic
// dimension, as no shape is known to be valid), and only then lets it take
// requests. ctx bounds the warm-up.
func (m *TensorModel) AddInstance(ctx context.Context) error {
	m.pool.resize.Lock()
	defer m.pool.resize.Unlock()
	if m.pool.closed {
		return fmt.Errorf("model %q: %w", m.opts.Name, ErrClosed)
	}
	if n := m.Instances(); n >= m.opts.MaxInstances {
		return fmt.Errorf("model %q has %d instances, its most: %w", m.opts.Name, n, ErrInstanceBounds)
	}
	so, err := NewSessionOptions(m.opts.IntraOpThreads, m.opts.InterOpThreads)
	if err != nil {
		return err
	}
	defer so.Destroy()
	s, err := ort.NewDynamicAdvancedSession(m.opts.Path, names(m.inputs), names(m.outputs), so)
	if err != nil {
		return fmt.Errorf("cannot open a session for model %q: %w", m.opts.Name, err)
	}
	in := NewSession(s)
	if err := m.warm(ctx, in); err != nil {
		in.Destroy()
		return fmt.Errorf("model %q: the new instance's warm-up inference failed: %w", m.opts.Name, err)
	}
	m.pool.mu.Lock()
	m.instances = append(m.instances, in)
	m.pool.mu.Unlock()
	m.free <- in
	m.queue.AddWorker()
	return nil
}

// RemoveInstance takes one instance out once it is idle: the queue first
// runs one worker fewer, then the instance that next finishes its run is
// closed. Requests queued meanwhile run on the others. It fails on the last
// instance; ctx bounds the wait.
func (m *TensorModel) RemoveInstance(ctx context.Context) error {
	m.pool.resize.Lock()
	defer m.pool.resize.Unlock()
	if m.pool.closed {
		return fmt.Errorf("model %q: %w", m.opts.Name, ErrClosed)
	}
	if m.Instances() <= 1 {
		return fmt.Errorf("model %q has one instance left: %w", m.opts.Name, ErrInstanceBounds)
	}
	m.queue.RetireWorker()
	var in *Session
	select {
	case in = <-m.free:
	case <-ctx.Done():
		m.queue.AddWorker()
		return fmt.Errorf("model %q: no instance became idle to remove: %w", m.opts.Name, context.Cause(ctx))
	}
	m.pool.mu.Lock()
	for i, x := range m.instances {
		if x == in {
			m.instances = append(m.instances[:i], m.instances[i+1:]...)
			break
		}
	}
	m.pool.mu.Unlock()
	in.Destroy()
	return nil
}

// warm runs one inference on a zero input on in, outside the queue.
func (m *TensorModel) warm(ctx context.Context, in *Session) error {
	inputs := make([]ort.Value, len(m.inputs))
	outputs := make([]ort.Value, len(m.outputs))
	defer func() {
		for _, v := range append(inputs, outputs...) {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, info := range m.inputs {
		shape := make([]int64, len(info.Shape))
		n := int64(1)
		for d, dim := range info.Shape {
			switch {
			case dim >= 0:
				shape[d] = dim
			case d == 0:
				shape[d] = 1
			default:
				// No shape is known to be valid: the session is used
				// cold, as the model was at load.
				return nil
			}
			n *= shape[d]
		}
		if n*int64(info.DataType.Size()) > maxWarmBytes {
			return nil
		}
		v, err := ort.NewCustomDataTensor(ort.NewShape(shape...), make([]byte, n*int64(info.DataType.Size())), ortTypes[info.DataType])
		if err != nil {
			return err
		}
		inputs[i] = v
	}
	_, err := in.Run(ctx, inputs, outputs)
	return err
}

// maxWarmBytes bounds the zero input of a new instance's warm-up.
const maxWarmBytes = 64 << 20
