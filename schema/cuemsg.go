package schema

// The rewriting of CUE's error messages into the issues an operator reads.
// It matches CUE's English messages, which are not an API:
// cuemsg_test.go makes CUE produce each message recognised here from a
// real bad config, so that a CUE upgrade that changes one fails there.

import (
	"fmt"
	"iter"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
)

// CUE's messages that the rewriting recognises, as cueerrors.Error.Msg
// gives their format. TestCUEMessages pins each one.
const (
	// cueRoot leads the path of every error: the definition the config
	// file is unified with.
	cueRoot = "#Config"
	// cueSummary ends the line "%d errors in empty disjunction:" that
	// CUE puts before the errors of the branches of a disjunction.
	cueSummary = "errors in empty disjunction:"
	// cueMissing: a required field that a comprehension needs (the kind
	// of a model) is missing. Args: the field's name.
	cueMissing = "required field missing: %s"
	// cueRequired: a required field (kind!, path!) is left out. The
	// checks in fields.go say it the same way, so that the two are
	// reported once.
	cueRequired = "field is required but not present"
	// cueConflict: a value fits no branch. Args: the two values, one of
	// them the operator's.
	cueConflict = "conflicting values %s and %s"
	// cueConflictTypes: as cueConflict, with the two values' kinds as the
	// third and fourth args.
	cueConflictTypes = "conflicting values %s and %s (mismatched types %s and %s)"
	// cueOutOfBound: a value fails a bound or a pattern. Args: the value
	// and the bound.
	cueOutOfBound = "invalid value %v (out of bound %s)"
	// cueNotAllowed: a field the schema does not declare. fields.go says
	// it the same way.
	cueNotAllowed = "field not allowed"
	// cueNotSatisfied: a value fails a validator of CUE's standard
	// library, such as net.IP or time.Time. Args: the value and the
	// validator.
	cueNotSatisfied = "invalid value %s (does not satisfy %s)"
)

// durationPattern is the start of the pattern of #Duration in config.cue, by
// which errors about a duration are told from others; a test checks that it
// stays in step with config.cue.
const durationPattern = `=~"^(0|([0-9]+`

const durationExamples = `"250ms", "1.5s", "1h30m" or "10d"`

// patterns are the starts of patterns in config.cue that say little to an
// operator, and what the message about a value that fails one says
// instead (a format with the value as its argument). durationPattern is
// one; TestPatterns keeps the others in step with config.cue.
var patterns = []struct{ start, msg string }{
	{durationPattern, "invalid duration %v: write it like " + durationExamples},
	{`=~"^sha256:`, `invalid hash %v: write "sha256:" and the 64 lowercase hex digits of the key's SHA-256, as aiassistd keygen prints it`},
	{`=~"^[!-~]+$"`, `invalid scope %v: write it in printable ASCII without spaces, such as "model:call"`},
	{`=~"^[a-zA-Z0-9][a-zA-Z0-9._@-]`, `invalid principal %v: write 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit, such as "team-a" or "alice@example.com"`},
	{`=~"^[a-zA-Z0-9_-]{1,32}$"`, `invalid severity %v: write 1 to 32 letters, digits, '_' or '-', such as "critical" or "warning"`},
}

// secretPaths are the paths of the values that are secrets: CUE's messages
// about them quote the value, which must never be printed.
var secretPaths = map[string]bool{
	"auth.jwt.hs256_secret": true,
	// A webhook URL may hold a password or a token.
	"alerts.webhook.url": true,
}

// redact replaces in msg, CUE's message about a secret, the strings among
// args, its arguments, so that the secret is never printed. An empty
// string stays, as it tells the operator what is wrong.
func redact(msg string, args []any) string {
	for _, a := range args {
		if s := fmt.Sprint(a); strings.HasPrefix(s, `"`) && s != `""` {
			msg = strings.ReplaceAll(msg, s, "(secret, not shown)")
		}
	}
	return msg
}

// cueError turns a CUE error into an *Error. Each issue is placed at a
// position in the config file when the error has one there; failing that (a
// required field is missing, so only the schema has a position) at the
// nearest enclosing value the config file does set.
//
// CUE reports a value that fits no branch of a disjunction such as
// *"info" | "debug" as one error per branch, plus a summary line; those are
// folded into one issue, so that the operator reads one line per mistake.
func cueError(filename string, err error, data cue.Value) error {
	type entry struct {
		path   []string
		format string
		args   []any
		e      cueerrors.Error
	}
	var entries []entry
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		if strings.HasSuffix(format, cueSummary) {
			continue // a summary of the errors that follow it
		}
		path := e.Path()
		if len(path) > 0 && path[0] == cueRoot {
			path = path[1:]
		}
		if format == cueNotAllowed && len(path) > 0 && isIndex(path[len(path)-1]) {
			// A list of the file longer than the one-element default of
			// listeners: CUE's error for the default branch of the
			// disjunction, which the file did not mean to take. The other
			// branch's errors say what is wrong, and listing this one
			// would also hide them (see dropInsideUnknown).
			continue
		}
		if format == cueMissing && len(args) == 1 {
			// Said the way checkFields says it, so that the two are
			// reported once: a model without kind gets both.
			path = append(slices.Clip(path), fmt.Sprint(args[0]))
			format = cueRequired
		}
		entries = append(entries, entry{path, format, args, e})
	}

	// Group the errors by path, keeping their order.
	var order []string
	groups := map[string][]entry{}
	for _, en := range entries {
		key := strings.Join(en.path, ".")
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], en)
	}

	var issues []Issue
	for _, key := range order {
		group := groups[key]
		var conflicts, others []entry
		for _, en := range group {
			if (en.format == cueConflict || en.format == cueConflictTypes) && len(en.args) >= 2 {
				conflicts = append(conflicts, en)
			} else {
				others = append(others, en)
			}
		}
		var msgs []string
		var at entry
		switch {
		case len(others) > 0:
			// A bound or pattern failed; the conflicts with the other
			// branches (usually the default) add nothing.
			at = others[0]
			for _, en := range others {
				msg := cueerrors.StringWithConfig(en.e, &cueerrors.Config{OmitPath: true})
				if en.format == cueRequired {
					msg = cueRequired
				}
				// The patterns and validators of durations, hashes and
				// times say little to an operator.
				switch {
				case en.format == cueOutOfBound && len(en.args) == 2:
					for _, p := range patterns {
						if strings.HasPrefix(fmt.Sprint(en.args[1]), p.start) {
							msg = fmt.Sprintf(p.msg, en.args[0])
							break
						}
					}
				case en.format == cueNotSatisfied && len(en.args) == 2 && fmt.Sprint(en.args[1]) == "time.Time":
					msg = fmt.Sprintf(`invalid time %v: write it in RFC 3339, such as "2027-03-01T00:00:00Z"`, en.args[0])
				}
				msgs = append(msgs, msg)
			}
		case len(conflicts) == 1:
			at = conflicts[0]
			msgs = append(msgs, conflict(at.args, valueAt(data, at.path), cueerrors.StringWithConfig(at.e, &cueerrors.Config{OmitPath: true})))
		default:
			at = conflicts[0]
			msgs = append(msgs, foldConflicts(conflicts[0].args, func(yield func([]any) bool) {
				for _, en := range conflicts {
					if !yield(en.args) {
						return
					}
				}
			}))
		}
		pos := filePos(filename, cueerrors.Positions(at.e))
		if !pos.IsValid() && data.Exists() {
			pos = nearestPos(filename, data, at.path)
		}
		for _, msg := range msgs {
			if at.format == cueNotAllowed {
				msg += knownFields(data, at.path)
			}
			if secretPaths[key] {
				for _, en := range group {
					msg = redact(msg, en.args)
				}
			}
			is := Issue{Path: key, Msg: msg}
			if pos.IsValid() {
				setPos(&is, pos)
			}
			issues = append(issues, is)
		}
	}
	if data.Exists() && data.Err() == nil {
		checkFields(filename, data, data, configDef, nil, &issues)
	}
	issues = dropInsideUnknown(issues)
	if len(issues) == 0 {
		// Not an error CUE describes in parts; keep it rather than lose it.
		issues = append(issues, Issue{Filename: filename, Line: 1, Column: 1, Msg: err.Error()})
	}
	return NewError(issues)
}

// isIndex reports whether elem, an element of an error path, is a list
// index.
func isIndex(elem string) bool {
	sel, err := selector(elem)
	return err == nil && sel.Type() == cue.IndexLabel
}

// dropInsideUnknown drops the issues inside a field that is itself not
// allowed (CUE reports batching.max_batch_size of a causal-lm model as well
// as batching): removing the outer field fixes them all.
func dropInsideUnknown(issues []Issue) []Issue {
	var unknown []string
	for _, is := range issues {
		if strings.HasPrefix(is.Msg, cueNotAllowed) && is.Path != "" {
			unknown = append(unknown, is.Path+".")
		}
	}
	return slices.DeleteFunc(issues, func(is Issue) bool {
		for _, u := range unknown {
			if strings.HasPrefix(is.Path, u) {
				return true
			}
		}
		return false
	})
}

// foldConflicts turns "conflicting values A and X", "conflicting values B
// and X", ... into "invalid value X (must be one of A, B)". X is the argument
// all the conflicts share: the operator's value.
func foldConflicts(first []any, all iter.Seq[[]any]) string {
	str := func(a any) string { return fmt.Sprint(a) }
	for _, mine := range first[:2] {
		var want []string
		shared := true
		for args := range all {
			switch {
			case str(args[0]) == str(mine):
				want = append(want, str(args[1]))
			case str(args[1]) == str(mine):
				want = append(want, str(args[0]))
			default:
				shared = false
			}
		}
		if !shared {
			continue
		}
		// A type among the alternatives, such as bool in *true | bool,
		// says all there is to say about the literals beside it.
		var types []string
		for _, w := range want {
			if slices.Contains([]string{"bool", "int", "float", "number", "string", "bytes"}, w) {
				types = append(types, w)
			}
		}
		if len(types) > 0 {
			want = types
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if len(want) == 1 {
			return fmt.Sprintf("invalid value %s (must be %s)", str(mine), want[0])
		}
		return fmt.Sprintf("invalid value %s (must be one of %s)", str(mine), strings.Join(want, ", "))
	}
	return fmt.Sprintf("conflicting values %s and %s", str(first[0]), str(first[1]))
}

// conflict rewrites the message of a single conflict of the operator's
// value (mine, as CUE prints it, or "" when unknown) with the schema's:
// "conflicting values "tensor" and "llm"" becomes "invalid value "llm"
// (must be "tensor")", and "conflicting values 3 and {kind!: ...}", which
// prints the whole schema of a struct, becomes "invalid value 3 (must be
// struct)". Other messages are returned as they are.
func conflict(args []any, mine, msg string) string {
	if len(args) < 2 {
		return msg
	}
	for i, a := range args[:2] {
		s := fmt.Sprint(a)
		if len(args) == 4 && (strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")) {
			return fmt.Sprintf("invalid value %v (must be %v)", args[1-i], args[2+i])
		}
	}
	for i, a := range args[:2] {
		if mine != "" && fmt.Sprint(a) == mine {
			return fmt.Sprintf("invalid value %v (must be %v)", a, args[1-i])
		}
	}
	return msg
}

// valueAt returns the value at path in the config file as CUE prints it in
// errors, or "" when it is not a concrete scalar.
func valueAt(data cue.Value, path []string) string {
	if !data.Exists() {
		return ""
	}
	sels := make([]cue.Selector, 0, len(path))
	for _, elem := range path {
		sel, err := selector(elem)
		if err != nil {
			return ""
		}
		sels = append(sels, sel)
	}
	v := data.LookupPath(cue.MakePath(sels...))
	if !v.Exists() || !v.IsConcrete() || v.Kind() == cue.StructKind || v.Kind() == cue.ListKind {
		return ""
	}
	return fmt.Sprint(v)
}
