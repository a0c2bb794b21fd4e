package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is returned by Load and Parse when a config file is invalid. It holds
// every problem found, and its message has one problem per line, each led by
// the file:line:col of the offending value:
//
//	config.cue:12:9: models.demo.instances: invalid value 0 (out of bound >=1)
type Error struct {
	Issues []Issue // sorted by position; at least one
}

// Issue is one problem in a config file.
type Issue struct {
	Filename string // "" when the problem has no position
	Line     int    // 1-based
	Column   int    // 1-based
	Path     string // CUE path of the offending value, such as "models.demo.path"; may be ""
	Msg      string
}

// String formats the issue as "file:line:col: path: msg", leaving out the
// parts that are unknown.
func (i Issue) String() string {
	var b strings.Builder
	if i.Filename != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", i.Filename, i.Line, i.Column)
	}
	if i.Path != "" {
		b.WriteString(i.Path)
		b.WriteString(": ")
	}
	b.WriteString(i.Msg)
	return b.String()
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		lines[i] = is.String()
	}
	return strings.Join(lines, "\n")
}

// NewError sorts and deduplicates issues; it returns nil when there are none
// so that callers can return its result directly.
func NewError(issues []Issue) error {
	if len(issues) == 0 {
		return nil
	}
	return &Error{Issues: sortIssues(issues)}
}

// sortIssues sorts issues by position and drops repeats, in place.
func sortIssues(issues []Issue) []Issue {
	if len(issues) == 0 {
		return nil
	}
	slices.SortStableFunc(issues, func(a, b Issue) int {
		return cmp.Or(
			cmp.Compare(a.Filename, b.Filename),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
	// The same mistake can be found twice (by CUE and by a check here, or
	// in two branches of a disjunction); report it once, where first seen.
	type key struct{ path, msg string }
	seen := map[key]bool{}
	out := issues[:0]
	for _, is := range issues {
		k := key{is.Path, is.Msg}
		if !seen[k] {
			seen[k] = true
			out = append(out, is)
		}
	}
	return out
}
