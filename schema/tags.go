package schema

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/ast/astutil"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// envName is a variable name a @tag may read: a shell name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// injectTags gives every field of f that carries @tag(NAME) or
// @tag(NAME,type=T) the value of the environment variable NAME, when it is
// set: the field's value becomes `value & injected`, so the schema still
// checks it and a default (`*"" | string @tag(NAME)`) applies when NAME is
// unset. T is string (the default), int, number or bool; a value that is
// not a T is an error at the attribute. This is how a container passes
// MODEL_PATH or PORT to the config file, as `cue export -t NAME=value`
// would, without a file per setting.
func injectTags(f *ast.File) error {
	var errs cueerrors.Error
	injected := false
	ast.Walk(f, func(n ast.Node) bool {
		field, ok := n.(*ast.Field)
		if !ok {
			return true
		}
		for _, a := range field.Attrs {
			key, body := a.Split()
			if key != "tag" {
				continue
			}
			lit, err := tagValue(body)
			if err != nil {
				errs = cueerrors.Append(errs, cueerrors.Newf(a.Pos(), "%s: %v", a.Text, err))
				continue
			}
			if lit != nil {
				ast.SetPos(lit, a.Pos())
				field.Value = &ast.BinaryExpr{X: field.Value, Op: token.AND, Y: lit}
				injected = true
			}
		}
		return true
	}, nil)
	if errs != nil {
		return errs
	}
	if injected {
		// The parser bound each reference to the value node of its
		// field, which a field given a tag no longer has: bind them
		// again.
		ast.Walk(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				id.Node, id.Scope = nil, nil
			}
			return true
		}, nil)
		f.Unresolved = nil
		var rerr cueerrors.Error
		astutil.Resolve(f, func(pos token.Pos, msg string, args ...any) {
			rerr = cueerrors.Append(rerr, cueerrors.Newf(pos, msg, args...))
		})
		if rerr != nil {
			return rerr
		}
	}
	return nil
}

// tagValue parses the body of a @tag attribute and returns the literal of
// its variable's value, or nil when the variable is unset.
func tagValue(body string) (ast.Expr, error) {
	parts := strings.Split(body, ",")
	name := strings.TrimSpace(parts[0])
	if !envName.MatchString(name) {
		return nil, fmt.Errorf("the tag name %q is not an environment variable name (letters, digits and _, not starting with a digit)", name)
	}
	typ := "string"
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if k != "type" {
			return nil, fmt.Errorf("unknown tag option %q; the only option is type=string|int|number|bool", k)
		}
		typ = strings.TrimSpace(v)
	}
	val, ok := os.LookupEnv(name)
	switch typ {
	case "string", "int", "number", "bool":
	default:
		return nil, fmt.Errorf("unknown tag type %q; use string, int, number or bool", typ)
	}
	if !ok {
		return nil, nil
	}
	bad := func() error {
		// The value may be anything the environment holds, a secret
		// included, so it is not quoted.
		return fmt.Errorf("$%s (%d bytes) is not a valid %s", name, len(val), typ)
	}
	switch typ {
	case "int":
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return nil, bad()
		}
		return &ast.BasicLit{Kind: token.INT, Value: strconv.FormatInt(n, 10)}, nil
	case "number":
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || x != x || x > 1e308 || x < -1e308 {
			return nil, bad()
		}
		return &ast.BasicLit{Kind: token.FLOAT, Value: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case "bool":
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return nil, bad()
		}
		return ast.NewBool(b), nil
	}
	return ast.NewString(val), nil
}
