package api

import (
	"bufio"
	"encoding/json"
)

// sseWriter writes server-sent events, one `data: <json>` event each,
// flushed at once so the client sees every chunk as it is made. The first
// error sticks: a client that went away fails every later write, which is
// how a stream learns to stop its generation.
type sseWriter struct {
	w   *bufio.Writer
	n   int // bytes written
	err error
}

// event writes v as one event.
func (s *sseWriter) event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return s.err
	}
	return s.data(b)
}

// done writes the OpenAI end-of-stream marker.
func (s *sseWriter) done() error { return s.data([]byte("[DONE]")) }

func (s *sseWriter) data(b []byte) error {
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

func (s *sseWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.w.Write(b)
	s.n += n
	s.err = err
}
