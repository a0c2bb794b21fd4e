package route

import (
	"bufio"
	"encoding/json"
)

// SSE writes server-sent events, one `data: <json>` event each, flushed at
// once so the client sees every chunk as it is made. The first error
// sticks: a client that went away fails every later write, which is how a
// stream learns to stop its generation.
type SSE struct {
	w   *bufio.Writer
	n   int // bytes written
	err error
}

// NewSSE returns an SSE writing to w.
func NewSSE(w *bufio.Writer) *SSE { return &SSE{w: w} }

// Event writes v as one event.
func (s *SSE) Event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return s.err
	}
	return s.data(b)
}

// Error writes e as an event, in the body a response would have had.
func (s *SSE) Error(e *Error) error { return s.data(e.body()) }

// Done writes the OpenAI end-of-stream marker.
func (s *SSE) Done() error { return s.data([]byte("[DONE]")) }

// Err is the first write error, or nil.
func (s *SSE) Err() error { return s.err }

// Written is how many bytes were written.
func (s *SSE) Written() int { return s.n }

func (s *SSE) data(b []byte) error {
	if s.err != nil {
		return s.err
	}
	s.write([]byte("data: "))
	s.write(b)
	s.write([]byte("\n\n"))
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

func (s *SSE) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.w.Write(b)
	s.n += n
	s.err = err
}
