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
		if f, ok := v.Source().(*ast.Field); ok && n == len(sels) && f.Value != nil {
			// Point at the offending value itself rather than its label,
			// as CUE does.
			p = f.Value.Pos()
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
