package generate

import (
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// seq is one sequence being generated. The lane that runs it owns the
// fields above the line; the caller reads its tokens through take.
type seq struct {
	ids     []int // prompt then generated tokens
	prompt  int
	maxNew  int
	sampler *sampler
	cached  int // positions in this sequence's cache
	own     []ort.Value
	ownLen  int // the cache length of own, during and after prefill
	fed     int // prompt tokens in own, during prefill
	id      int // the model's count of sequences when this one came: for Event
	// alone keeps the sequence out of decode batches, so that its logits
	// do not depend on what else runs: set for a seeded request.
	alone bool

	cancelled atomic.Bool // set by the caller: stop at the next step

	mu     sync.Mutex
	out    []int
	finish string // "stop" or "length" once done
	err    error
	done   bool
	notify chan struct{}
}

func (s *seq) push(id int) {
	s.mu.Lock()
	s.out = append(s.out, id)
	s.mu.Unlock()
	s.wake()
}

func (s *seq) end(finish string, err error) {
	s.mu.Lock()
	s.finish, s.err, s.done = finish, err, true
	s.mu.Unlock()
	s.wake()
}

func (s *seq) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *seq) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns the tokens produced since the last call and whether the
// sequence has ended.
func (s *seq) take(buf []int) ([]int, bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = append(buf[:0], s.out...)
	s.out = s.out[:0]
	return buf, s.done, s.finish, s.err
}

func (s *seq) release() {
	for _, v := range s.own {
		v.Destroy()
	}
	s.own = nil
}
