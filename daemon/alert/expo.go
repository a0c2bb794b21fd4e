package alert

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The evaluator reads the daemon's metrics the way Prometheus does: from
// the text exposition format /metrics serves. That way the rule file and
// the evaluator see the same series with the same labels, and the daemon
// needs no second path to its counters (VictoriaMetrics/metrics histograms
// expose their buckets only as text).

// sample is one line of the exposition.
type sample struct {
	name   string
	labels []label
	value  float64
}

type label struct{ name, value string }

func (s sample) label(name string) string {
	for _, l := range s.labels {
		if l.name == name {
			return l.value
		}
	}
	return ""
}

// maxLabels bounds the labels of one line; the daemon's series have a few.
const maxLabels = 32

// parseExposition reads the samples whose metric name keep accepts. A
// malformed line is skipped and the first such error returned along with
// everything else, so one bad line from a custom writer cannot blind the
// evaluator.
func parseExposition(b []byte, keep func(name string) bool) ([]sample, error) {
	var out []sample
	var firstErr error
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, "\r")
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		s, ok, err := parseLine(line, keep)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("metrics line %d: %w", n, err)
			}
			continue
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, firstErr
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

func isNameChar(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

func parseLine(line []byte, keep func(string) bool) (sample, bool, error) {
	i := 0
	for i < len(line) && isNameChar(line[i]) {
		i++
	}
	if i == 0 || !isNameStart(line[0]) {
		return sample{}, false, errors.New("line does not start with a metric name")
	}
	name := string(line[:i])
	if !keep(name) {
		return sample{}, false, nil
	}
	s := sample{name: name}
	rest := line[i:]
	if len(rest) > 0 && rest[0] == '{' {
		var err error
		s.labels, rest, err = parseLabels(rest[1:])
		if err != nil {
			return sample{}, false, err
		}
	}
	rest = bytes.TrimLeft(rest, " \t")
	end := bytes.IndexAny(rest, " \t")
	if end < 0 {
		end = len(rest)
	}
	if end == 0 {
		return sample{}, false, errors.New("no value after the series name")
	}
	v, err := strconv.ParseFloat(string(rest[:end]), 64)
	if err != nil {
		return sample{}, false, fmt.Errorf("value %q is not a number", truncate(rest[:end]))
	}
	// A timestamp may follow; the evaluator uses its own clock.
	s.value = v
	return s, true, nil
}

// parseLabels reads `name="value",...}` and returns what follows the brace.
func parseLabels(b []byte) ([]label, []byte, error) {
	var ls []label
	for {
		b = bytes.TrimLeft(b, " \t")
		if len(b) > 0 && b[0] == '}' {
			return ls, b[1:], nil
		}
		if len(ls) == maxLabels {
			return nil, nil, fmt.Errorf("more than %d labels", maxLabels)
		}
		i := 0
		for i < len(b) && isNameChar(b[i]) {
			i++
		}
		if i == 0 || !isNameStart(b[0]) {
			return nil, nil, errors.New("bad label name")
		}
		name := string(b[:i])
		b = bytes.TrimLeft(b[i:], " \t")
		if len(b) < 2 || b[0] != '=' {
			return nil, nil, fmt.Errorf("label %q has no '='", name)
		}
		b = bytes.TrimLeft(b[1:], " \t")
		if len(b) == 0 || b[0] != '"' {
			return nil, nil, fmt.Errorf("label %q has no quoted value", name)
		}
		// Find the closing quote, skipping escaped characters.
		j, esc := 1, false
		for ; j < len(b); j++ {
			if b[j] == '\\' {
				esc = true
				j++
				continue
			}
			if b[j] == '"' {
				break
			}
		}
		if j >= len(b) {
			return nil, nil, fmt.Errorf("label %q: value has no closing quote", name)
		}
		raw := b[1:j]
		value := string(raw)
		if esc {
			// The exposition's escapes (\\ \" \n) are Go's, and the daemon
			// quotes label values with strconv.Quote.
			v, err := strconv.Unquote(`"` + string(raw) + `"`)
			if err != nil {
				return nil, nil, fmt.Errorf("label %q: bad escape in value", name)
			}
			value = v
		}
		ls = append(ls, label{name, value})
		b = bytes.TrimLeft(b[j+1:], " \t")
		if len(b) > 0 && b[0] == ',' {
			b = b[1:]
			continue
		}
		if len(b) > 0 && b[0] == '}' {
			return ls, b[1:], nil
		}
		return nil, nil, errors.New("labels not closed with '}'")
	}
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}
