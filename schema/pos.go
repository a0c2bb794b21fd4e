package schema

import (
	"fmt"
	"strconv"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// filePos returns the first of positions in the config file.
func filePos(filename string, positions []token.Pos) token.Pos {
	for _, p := range positions {
		if p.IsValid() && p.Filename() == filename {
			return p
		}
	}
	return token.NoPos
}

// selector parses one element of an error path: a list index, or a label
// as CUE prints it (quoted when it is not an identifier).
func selector(elem string) (cue.Selector, error) {
	if n, err := strconv.Atoi(elem); err == nil && n >= 0 && strconv.Itoa(n) == elem {
		return cue.Index(n), nil
	}
	p := cue.ParsePath(elem)
	if err := p.Err(); err != nil {
		return cue.Selector{}, err
	}
	sels := p.Selectors()
	if len(sels) != 1 {
		return cue.Selector{}, fmt.Errorf("not one selector: %q", elem)
	}
	return sels[0], nil
}

// label formats a map key as an element of an error path.
func label(name string) string {
	return cue.Str(name).String()
}

// nearestPos returns the position in the config file of the value at path,
// or of its closest ancestor that the file sets.
func nearestPos(filename string, data cue.Value, path []string) token.Pos {
	sels := make([]cue.Selector, 0, len(path))
	for _, elem := range path {
		sel, err := selector(elem)
		if err != nil {
			break
		}
		sels = append(sels, sel)
	}
	for n := len(sels); n >= 0; n-- {
		v := data.LookupPath(cue.MakePath(sels[:n]...))
		if !v.Exists() {
			continue
		}
		p := v.Pos()
		if n == len(sels) {
			p = valuePos(v)
		}
		if p.IsValid() && p.Filename() == filename {
			return p
		}
	}
	return token.NoPos
}

func setPos(is *Issue, pos token.Pos) {
	p := pos.Position()
	is.Filename, is.Line, is.Column = p.Filename, p.Line, p.Column
}

// valuePos returns the position of v itself rather than of its label, as
// CUE's errors give it.
func valuePos(v cue.Value) token.Pos {
	if f, ok := v.Source().(*ast.Field); ok && f.Value != nil {
		return f.Value.Pos()
	}
	return v.Pos()
}

// places records where a config file sets its values, for Config.Pos and
// Config.Issue.
type places struct {
	filename string           // the file as named to Load or Parse
	at       map[string]place // by CUE path, as Issue.Path writes it
}

// place is where the config file sets one value.
type place struct {
	line, col int    // 0 when the file has no position for it
	parent    string // the CUE path of the enclosing value; "" for the file
}

// findPlaces walks data, a valid config file alone, and records where it
// sets each value. Fields are found as CUE unifies them, so a value set in
// several places of the file, or by a pattern such as models: [string]:
// {...}, is where CUE places it.
func findPlaces(filename string, data cue.Value) *places {
	ps := &places{filename: filename, at: map[string]place{}}
	var walk func(v cue.Value, path string)
	add := func(parent, elem string, v cue.Value) {
		path := elem
		if parent != "" {
			path = parent + "." + elem
		}
		pl := place{parent: parent}
		if pos := valuePos(v); pos.IsValid() && pos.Filename() == filename {
			p := pos.Position()
			pl.line, pl.col = p.Line, p.Column
		}
		ps.at[path] = pl
		walk(v, path)
	}
	// The schema is closed and shallow, so a valid file nests only a few
	// levels deep.
	walk = func(v cue.Value, path string) {
		switch v.Kind() {
		case cue.StructKind:
			it, err := v.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				add(path, it.Selector().String(), it.Value())
			}
		case cue.ListKind:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				add(path, strconv.Itoa(i), it.Value())
			}
		}
	}
	walk(data, "")
	return ps
}
