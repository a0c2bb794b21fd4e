package schema

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	cueerrors "cuelang.org/go/cue/errors"
)

// rawErrors evaluates src as Parse does and returns CUE's errors as CUE
// words them, before any rewriting.
func rawErrors(t *testing.T, src string) []cueerrors.Error {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	compileOnce.Do(compileSchema)
	_, _, err := evaluate("pin.cue", []byte(src))
	if err == nil {
		t.Fatalf("CUE accepts %q; the test needs a config CUE refuses", src)
	}
	return cueerrors.Errors(err)
}

// TestCUEMessages pins the messages of CUE that cuemsg.go recognises by
// their English text. For each one it makes CUE refuse a real bad config
// and checks that the raw message still has the form the rewriting
// expects, so that a CUE upgrade that rewords one fails here, naming the
// constant to update, rather than silently passing CUE's raw text (or
// worse, a wrong rewriting) to operators.
func TestCUEMessages(t *testing.T) {
	type want struct {
		constant string // the constant in cuemsg.go that names the message
		src      string // a config CUE refuses with that message
		path     string // the error's path, without cueRoot
		match    func(format string, args []string, text string) bool
		expected string // the form, for the failure message
	}
	str := func(args []any) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = fmt.Sprint(a)
		}
		return out
	}
	for _, w := range []want{
		{
			constant: "cueSummary", src: `logging: level: "trace"`, path: "logging.level",
			match: func(format string, args []string, _ string) bool {
				return strings.HasSuffix(format, cueSummary) && len(args) == 1
			},
			expected: "%d" + " " + cueSummary,
		},
		{
			constant: "cueConflict", src: `logging: level: "trace"`, path: "logging.level",
			match: func(format string, args []string, _ string) bool {
				// foldConflicts finds the operator's value as the argument
				// every conflict shares.
				return format == cueConflict && len(args) == 2 && slices.Contains(args, `"trace"`) && slices.Contains(args, `"debug"`)
			},
			expected: cueConflict + ` with args "debug" and "trace" (either order)`,
		},
		{
			constant: "cueConflictTypes", src: `models: demo: 3`, path: "models.demo",
			match: func(format string, args []string, _ string) bool {
				// conflict finds the struct's schema among the first two
				// args and its kind two further on.
				return format == cueConflictTypes && len(args) == 4 && args[0] == "3" &&
					strings.HasPrefix(args[1], "{") && args[2] == "int" && args[3] == "struct"
			},
			expected: cueConflictTypes + " with args 3, {...}, int, struct",
		},
		{
			constant: "cueConflictTypes", src: `reload: watch: "yes"`, path: "reload.watch",
			match: func(format string, args []string, _ string) bool {
				return format == cueConflictTypes && len(args) == 4 && args[0] == `"yes"` && args[1] == "bool"
			},
			expected: cueConflictTypes + ` with args "yes", bool, string, bool`,
		},
		{
			constant: "cueMissing", src: `models: b: {path: "m"}`, path: "models.b",
			match: func(format string, args []string, _ string) bool {
				return format == cueMissing && len(args) == 1 && args[0] == "kind"
			},
			expected: cueMissing + " with arg kind",
		},
		{
			constant: "cueRequired", src: `models: demo: {kind: "tensor"}`, path: "models.demo.path",
			match: func(format string, args []string, text string) bool {
				return format == cueRequired && len(args) == 0 && text == cueRequired
			},
			expected: cueRequired + ", printed as is",
		},
		{
			constant: "cueOutOfBound (and durationPattern)", src: `server: request_timeout: "30 seconds"`, path: "server.request_timeout",
			match: func(format string, args []string, _ string) bool {
				return format == cueOutOfBound && len(args) == 2 && args[0] == `"30 seconds"` && strings.HasPrefix(args[1], durationPattern)
			},
			expected: cueOutOfBound + ` with args "30 seconds" and the pattern of #Duration`,
		},
		{
			// Not rewritten, but passed on to operators as it is: the
			// messages in README and the tests have this form.
			constant: "cueOutOfBound", src: `listeners: [{port: 70000}]`, path: "listeners.0.port",
			match: func(format string, _ []string, text string) bool {
				return format == cueOutOfBound && text == "invalid value 70000 (out of bound <65536)"
			},
			expected: "invalid value 70000 (out of bound <65536)",
		},
		{
			constant: "cueOutOfBound (and patterns)", src: `auth: api_keys: k: hash: "md5:1"`, path: "auth.api_keys.k.hash",
			match: func(format string, args []string, _ string) bool {
				return format == cueOutOfBound && len(args) == 2 && args[0] == `"md5:1"` && strings.HasPrefix(args[1], patterns[1].start)
			},
			expected: cueOutOfBound + ` with args "md5:1" and the pattern of a hash`,
		},
		{
			constant: "cueNotSatisfied", src: `auth: api_keys: k: {hash: "sha256:` + strings.Repeat("0", 64) + `", created: "2026-01-01"}`, path: "auth.api_keys.k.created",
			match: func(format string, args []string, _ string) bool {
				return format == cueNotSatisfied && len(args) == 2 && args[0] == `"2026-01-01"` && args[1] == "time.Time"
			},
			expected: cueNotSatisfied + ` with args "2026-01-01" and time.Time`,
		},
		{
			constant: "cueNotAllowed", src: `logging: colour: 1`, path: "logging.colour",
			match: func(format string, args []string, text string) bool {
				return format == cueNotAllowed && len(args) == 0 && text == cueNotAllowed
			},
			expected: cueNotAllowed + ", printed as is",
		},
	} {
		errs := rawErrors(t, w.src)
		var got []string
		found := false
		for _, e := range errs {
			format, args := e.Msg()
			path := e.Path()
			if len(path) == 0 || path[0] != cueRoot {
				t.Errorf("cueRoot: CUE's error %q for %q has path %q, which does not start with %q; update cueRoot in cuemsg.go",
					format, w.src, path, cueRoot)
				continue
			}
			text := cueerrors.StringWithConfig(e, &cueerrors.Config{OmitPath: true})
			got = append(got, fmt.Sprintf("%s: format %q args %q", strings.Join(path[1:], "."), format, str(args)))
			if strings.Join(path[1:], ".") == w.path && w.match(format, str(args), text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: CUE no longer words the error for %q at %s as %s; update %s in cuemsg.go and the rewriting that uses it. CUE said:\n\t%s",
				w.constant, w.src, w.path, w.expected, w.constant, strings.Join(got, "\n\t"))
		}
	}
}

// TestCUEPositions pins what cueError relies on for positions: a value the
// operator got wrong carries its place in the config file, and a parse
// error its place in the file being parsed.
func TestCUEPositions(t *testing.T) {
	for _, src := range []string{`logging: colour: 1`, `listeners: [{port: 70000}]`} {
		for _, e := range rawErrors(t, src) {
			if format, _ := e.Msg(); strings.HasSuffix(format, cueSummary) {
				continue
			}
			if !filePos("pin.cue", cueerrors.Positions(e)).IsValid() {
				t.Errorf("CUE's error %q for %q has no position in the config file: %v", e, src, cueerrors.Positions(e))
			}
		}
	}
	errs := rawErrors(t, "logging: {\n\tlevel: \"info\"\n")
	if len(errs) == 0 || !filePos("pin.cue", cueerrors.Positions(errs[0])).IsValid() {
		t.Errorf("CUE's parse error has no position in the file: %v", errs)
	}
}
