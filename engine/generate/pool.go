package generate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aiassist/aiassist/engine"
)

// A causal-lm model's lanes can change while it serves. A lane is added
// only once its session has run one decode step, and it takes sequences
// from then on; one that goes first stops taking new sequences, and is
// stopped and its session closed only once the sequences it runs have
// ended, so no generation is cut short.

// lanePool serialises the changes of a model's lanes.
type lanePool struct {
	resize sync.Mutex // held by AddInstance, RemoveInstance and close
	closed bool       // under resize
	path   string     // the ONNX file new sessions open

	mu      sync.Mutex     // guards Model.lanes, Model.sessions, leaving
	leaving map[*lane]bool // lanes being drained: they take no sequence
}

func (p *lanePool) close() {
	p.resize.Lock()
	defer p.resize.Unlock()
	p.closed = true
}

// Instances is the number of lanes taking sequences now.
func (m *Model) Instances() int {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	return len(m.lanes) - len(m.pool.leaving)
}

// QueueDepth is the number of generations waiting for a sequence slot.
func (m *Model) QueueDepth() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waiting
}

func (m *Model) allLanes() []*lane {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	return append([]*lane(nil), m.lanes...)
}

// assign hands s to the least loaded lane that is not leaving. Picking
// and adding under pool.mu keeps a leaving lane from taking it.
func (m *Model) assign(s *seq) {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	var best *lane
	bestLoad := -1
	for _, l := range m.lanes {
		if m.pool.leaving[l] {
			continue
		}
		l.mu.Lock()
		load := l.load
		l.mu.Unlock()
		if bestLoad < 0 || load < bestLoad {
			best, bestLoad = l, load
		}
	}
	best.add(s)
}

// ErrInstanceBounds is the error of an AddInstance past MaxInstances or a
// RemoveInstance of the last lane.
var ErrInstanceBounds = errors.New("instance count out of bounds")

// AddInstance opens one more session, runs one decode step of token 0 on
// it, and then starts its lane.
func (m *Model) AddInstance(ctx context.Context) error {
	m.pool.resize.Lock()
	defer m.pool.resize.Unlock()
	if m.pool.closed {
		return fmt.Errorf("model %q: %w", m.opts.Name, engine.ErrClosed)
	}
	if n := m.Instances(); n >= max(m.opts.MaxInstances, m.opts.Instances) {
		return fmt.Errorf("model %q has %d instances, its most: %w", m.opts.Name, n, ErrInstanceBounds)
	}
	so, err := engine.NewSessionOptions(m.opts.IntraOpThreads, m.opts.InterOpThreads)
	if err != nil {
		return err
	}
	defer so.Destroy()
	s, err := ort.NewDynamicAdvancedSession(m.pool.path, m.io.inputNames, m.io.outputNames, so)
	if err != nil {
		return fmt.Errorf("cannot open a session for model %q: %w", m.opts.Name, err)
	}
	l := newLane(m, s)
	// The warm-up runs before the lane's goroutine, so nothing else
	// uses the session yet. Token 0 is in every vocabulary.
	out, err := l.runModel([][]int{{0}}, [][]int{{0}}, nil, 0, []int{0}, nil)
	if err != nil {
		s.Destroy()
		return fmt.Errorf("model %q: the new instance's warm-up step failed: %w", m.opts.Name, err)
	}
	destroyAll(out.present)
	if err := ctx.Err(); err != nil {
		s.Destroy()
		return err
	}
	m.pool.mu.Lock()
	m.sessions = append(m.sessions, s)
	m.lanes = append(m.lanes, l)
	m.pool.mu.Unlock()
	go l.run()
	return nil
}

// drainPoll is how often RemoveInstance looks whether a leaving lane's
// sequences have ended.
const drainPoll = 5 * time.Millisecond

// RemoveInstance stops the least loaded lane from taking sequences, waits
// until those it runs have ended, then stops it and closes its session.
// It fails on the last lane; ctx bounds the wait, after which the lane
// takes sequences again.
func (m *Model) RemoveInstance(ctx context.Context) error {
	m.pool.resize.Lock()
	defer m.pool.resize.Unlock()
	if m.pool.closed {
		return fmt.Errorf("model %q: %w", m.opts.Name, engine.ErrClosed)
	}
	m.pool.mu.Lock()
	if len(m.lanes)-len(m.pool.leaving) <= 1 {
		m.pool.mu.Unlock()
		return fmt.Errorf("model %q has one instance left: %w", m.opts.Name, ErrInstanceBounds)
	}
	var l *lane
	least := -1
	for _, x := range m.lanes {
		x.mu.Lock()
		load := x.load
		x.mu.Unlock()
		if least < 0 || load < least {
			l, least = x, load
		}
	}
	if m.pool.leaving == nil {
		m.pool.leaving = map[*lane]bool{}
	}
	m.pool.leaving[l] = true
	m.pool.mu.Unlock()

	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		l.mu.Lock()
		load := l.load
		l.mu.Unlock()
		if load == 0 {
			break
		}
		select {
		case <-ctx.Done():
			m.pool.mu.Lock()
			delete(m.pool.leaving, l)
			m.pool.mu.Unlock()
			return fmt.Errorf("model %q: the leaving instance still ran %d sequences: %w", m.opts.Name, load, context.Cause(ctx))
		case <-t.C:
		}
	}
	l.stop()
	m.pool.mu.Lock()
	delete(m.pool.leaving, l)
	for i, x := range m.lanes {
		if x == l {
			m.lanes = append(m.lanes[:i], m.lanes[i+1:]...)
			break
		}
	}
	for i, s := range m.sessions {
		if s == l.sess {
			m.sessions = append(m.sessions[:i], m.sessions[i+1:]...)
			break
		}
	}
	m.pool.mu.Unlock()
	l.sess.Destroy()
	return nil
}
