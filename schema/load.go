package schema

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
)

//go:embed config.cue
var schemaSrc []byte

// schemaFilename names the embedded schema in positions. It differs from any
// name an operator would give a config file, so that positions in the config
// file can be told from positions in the schema.
const schemaFilename = "aiassist/schema/config.cue"

var (
	// mu guards ctx and every value made from it. The CUE documentation has
	// not always promised that a Context is safe for concurrent use, and a
	// config is loaded seldom enough that one lock costs nothing.
	mu        sync.Mutex
	ctx       *cue.Context
	configDef cue.Value // #Config

	compileOnce sync.Once
)

// compileSchema compiles the embedded schema once; every later Parse reuses
// it, so a reload costs one unification and not a compilation. It panics on
// an invalid schema, which is a bug caught by the tests.
func compileSchema() {
	ctx = cuecontext.New()
	v := ctx.CompileBytes(schemaSrc, cue.Filename(schemaFilename))
	if err := v.Err(); err != nil {
		panic(fmt.Sprintf("schema: invalid embedded schema: %s", cueerrors.Details(err, nil)))
	}
	configDef = v.LookupPath(cue.MakePath(cue.Def("#Config")))
	if err := configDef.Err(); err != nil {
		panic(fmt.Sprintf("schema: embedded schema has no #Config: %v", err))
	}
}

// Load reads and validates the config file at path. An invalid file gives
// an *Error that lists every problem found, each with its file:line:col.
// The returned Config is read-only: see Config.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, src)
}

// Parse validates src as the config file named filename. Positions in
// errors use filename as given, relative model paths are resolved against
// its directory, and Config.Path is its absolute form. The file itself is
// not read.
func Parse(filename string, src []byte) (cfg *Config, err error) {
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve config path %q: %w", filename, err)
	}

	mu.Lock()
	defer mu.Unlock()
	// A panic inside the CUE evaluator on some odd input must not take the
	// daemon down on a reload; the last good config stays in use instead.
	defer func() {
		if r := recover(); r != nil {
			cfg = nil
			err = fmt.Errorf("%s: internal error evaluating config (please report this): %v\n%s", filename, r, debug.Stack())
		}
	}()
	compileOnce.Do(compileSchema)

	data, v, err := evaluate(filename, src)
	if err != nil {
		return nil, cueError(filename, err, data)
	}
	var raw rawConfig
	if err := v.Decode(&raw); err != nil {
		return nil, cueError(filename, err, data)
	}
	c := &checker{filename: filename, data: data}
	cfg = c.convert(&raw, abs)
	if err := NewError(c.issues); err != nil {
		return nil, err
	}
	cfg.places = findPlaces(filename, data)
	cfg.warnings = sortIssues(c.warnings)
	return cfg, nil
}

// evaluate parses src and unifies it with #Config. It returns the config
// file alone (data, which does not exist when src does not parse), the
// unified config (v), and CUE's error as CUE words it. mu must be held and
// the schema compiled.
func evaluate(filename string, src []byte) (data, v cue.Value, err error) {
	f, err := parser.ParseFile(filename, src)
	if err != nil {
		return cue.Value{}, cue.Value{}, err
	}
	if err := injectTags(f); err != nil {
		return cue.Value{}, cue.Value{}, err
	}
	data = ctx.BuildFile(f)
	if err := data.Err(); err != nil {
		return data, cue.Value{}, err
	}
	v = configDef.Unify(data)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return data, v, err
	}
	return data, v, nil
}
