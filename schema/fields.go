package schema

// Walking the schema beside the config file: the fields a value may have,
// and the unknown and missing fields that CUE leaves unreported.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"
)

// knownFields returns a hint naming the fields the schema allows beside the
// unknown one at path, such as "; known fields here: address, port". data is
// the config file, whose model kinds decide which fields a model has.
func knownFields(data cue.Value, path []string) string {
	if len(path) == 0 {
		return ""
	}
	parent := path[:len(path)-1]
	v := configDef
	for _, elem := range parent {
		sel, err := selector(elem)
		if err != nil {
			return ""
		}
		if v, err = schemaAt(v, sel); err != nil {
			return ""
		}
		if data.Exists() {
			data = data.LookupPath(cue.MakePath(sel))
			v = withKind(v, data)
		}
	}
	if sel, err := selector(path[len(path)-1]); err != nil || v.Allows(sel) {
		// The field is closed out by a definition in the config file
		// itself, whose fields are not the schema's.
		return ""
	}
	if what, ok := namedMaps[strings.Join(parent, ".")]; ok {
		return "; " + what + " name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
	}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return ""
	}
	type field struct {
		name string
		pos  token.Pos
	}
	var fields []field
	for it.Next() {
		fields = append(fields, field{it.Selector().Unquoted(), it.Value().Pos()})
	}
	if len(fields) == 0 {
		return ""
	}
	// List them in the order config.cue declares them: a model's fields
	// of its kind come in after the others, out of order.
	slices.SortStableFunc(fields, func(a, b field) int {
		if a.pos.Filename() != schemaFilename || b.pos.Filename() != schemaFilename {
			return 0
		}
		return a.pos.Offset() - b.pos.Offset()
	})
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if kind, err := v.LookupPath(cue.MakePath(cue.Str("kind"))).String(); err == nil && len(parent) == 2 && parent[0] == "models" {
		return fmt.Sprintf("; known fields of a %q model: %s", kind, strings.Join(names, ", "))
	}
	return "; known fields here: " + strings.Join(names, ", ")
}

// namedMaps are the maps whose keys are names (#Name in config.cue), by
// path, and what they name.
var namedMaps = map[string]string{
	"models":         "a model",
	"auth.api_keys":  "an API key",
	"limits.classes": "a limit class",
}

// schemaAt returns the schema of the value at sel in a value whose schema
// is v. It goes through a list to the first element of its default (the
// element type: lists in #Config default to one element), and through a map
// of models by adding the name, which the pattern constraint makes a #Model.
func schemaAt(v cue.Value, sel cue.Selector) (cue.Value, error) {
	if sel.Type() == cue.IndexLabel {
		if d, ok := v.Default(); ok {
			v = d
		}
		sel = cue.Index(0)
	}
	path := cue.MakePath(sel)
	next := v.LookupPath(path)
	if !next.Exists() && v.Allows(sel) {
		next = v.FillPath(path, struct{}{}).LookupPath(path)
	}
	if !next.Exists() {
		return cue.Value{}, fmt.Errorf("no schema at %v", sel)
	}
	return next, nil
}

// withKind narrows the schema s of a model to the kind data (the model in
// the config file) gives it, so that the fields of that kind, and only those,
// are allowed: a #Model adds its kind's fields in a comprehension on kind,
// which stays unresolved, and so allows anything, until kind is known. s is
// returned as it is when data sets no valid kind.
func withKind(s, data cue.Value) cue.Value {
	kind := cue.MakePath(cue.Str("kind"))
	str, err := data.LookupPath(kind).String()
	if err != nil || !s.Allows(cue.Str("kind")) {
		return s
	}
	f := s.FillPath(kind, str)
	if f.LookupPath(kind).Err() != nil {
		return s
	}
	return f
}

// checkFields reports every field of data that its schema s does not allow,
// and every field s requires that data lacks. CUE reports these too, but
// leaves them out when another value of the same struct is also wrong, and
// every mistake should be reported. root is the whole config file, data the
// value at path in it.
func checkFields(filename string, root, data, s cue.Value, path []string, issues *[]Issue) {
	switch data.Kind() {
	case cue.StructKind:
		s = withKind(s, data)
		// A model without its kind is an error (its comprehensions on kind
		// cannot be resolved) whose fields can still be listed.
		if k := s.IncompleteKind(); k != cue.StructKind && k != cue.BottomKind {
			return
		}
		req, err := s.Fields(cue.Optional(true))
		if err != nil {
			return
		}
		for req.Next() {
			sel := req.Selector()
			if sel.ConstraintType() != cue.RequiredConstraint {
				continue
			}
			name := sel.Unquoted()
			if !data.LookupPath(cue.MakePath(cue.Str(name))).Exists() {
				p := append(slices.Clip(path), label(name))
				is := Issue{Path: strings.Join(p, "."), Msg: cueRequired}
				// Point at the struct that lacks the field, as CUE does.
				if pos := data.Pos(); pos.IsValid() && pos.Filename() == filename {
					setPos(&is, pos)
				}
				*issues = append(*issues, is)
			}
		}
		it, err := data.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			sel := it.Selector()
			p := append(slices.Clip(path), sel.String())
			if !s.Allows(sel) {
				is := Issue{Path: strings.Join(p, "."), Msg: cueNotAllowed + knownFields(root, p)}
				if pos := it.Value().Pos(); pos.IsValid() && pos.Filename() == filename {
					setPos(&is, pos)
				}
				*issues = append(*issues, is)
				continue
			}
			if next, err := schemaAt(s, sel); err == nil {
				checkFields(filename, root, it.Value(), next, p, issues)
			}
		}
	case cue.ListKind:
		it, err := data.List()
		if err != nil {
			return
		}
		for i := 0; it.Next(); i++ {
			if next, err := schemaAt(s, cue.Index(i)); err == nil {
				checkFields(filename, root, it.Value(), next, append(slices.Clip(path), strconv.Itoa(i)), issues)
			}
		}
	}
}
