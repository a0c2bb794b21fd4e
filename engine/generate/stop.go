package generate

import "strings"

// stopper finds stop sequences in streamed text. It holds back the end of
// the text that could still grow into a stop sequence, so what it releases
// never contains one, even when a stop sequence spans tokens.
type stopper struct {
	stops   []string
	pending string
}

func newStopper(stops []string) *stopper {
	s := &stopper{}
	for _, st := range stops {
		if st != "" {
			s.stops = append(s.stops, st)
		}
	}
	return s
}

// add appends text and returns what can be released, and whether a stop
// sequence was found (the release then ends just before it).
func (s *stopper) add(text string) (string, bool) {
	s.pending += text
	if len(s.stops) == 0 {
		out := s.pending
		s.pending = ""
		return out, false
	}
	cut := -1
	for _, st := range s.stops {
		if i := strings.Index(s.pending, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		out := s.pending[:cut]
		s.pending = ""
		return out, true
	}
	hold := 0
	for _, st := range s.stops {
		for n := min(len(st)-1, len(s.pending)); n > hold; n-- {
			if strings.HasSuffix(s.pending, st[:n]) {
				hold = n
				break
			}
		}
	}
	out := s.pending[:len(s.pending)-hold]
	s.pending = s.pending[len(s.pending)-hold:]
	return out, false
}

// flush releases what is held back at the end of the text.
func (s *stopper) flush() string {
	out := s.pending
	s.pending = ""
	return out
}
