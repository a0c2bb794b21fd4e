package schema

import (
	_ "embed"
	"fmt"
	"iter"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

//go:embed config.cue
var schemaSrc []byte

// schemaFilename names the embedded schema in positions. It differs from any
// name an operator would give a config file, so that positions in the config
// file can be told from positions in the schema.
const schemaFilename = "aiassist/schema/config.cue"

// durationPattern is the start of the pattern of #Duration in config.cue, by
// which errors about a duration are told from others; a test checks that it
// stays in step with config.cue.
const durationPattern = `=~"^(0|([0-9]+`

const requiredMsg = "field is required but not present"

const durationExamples = `"250ms", "1.5s" or "1h30m"`

// maxQueueDelay bounds batching.max_queue_delay: a longer wait would hold
// every request of a quiet model for longer than any client would expect.
const maxQueueDelay = 10 * time.Second

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

	f, err := parser.ParseFile(filename, src)
	if err != nil {
		return nil, cueError(filename, err, cue.Value{})
	}
	data := ctx.BuildFile(f)
	if err := data.Err(); err != nil {
		return nil, cueError(filename, err, data)
	}
	v := configDef.Unify(data)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil, cueError(filename, err, data)
	}
	var raw rawConfig
	if err := v.Decode(&raw); err != nil {
		return nil, cueError(filename, err, data)
	}
	c := &checker{filename: filename, data: data}
	cfg = c.convert(&raw, abs)
	if err := newError(c.issues); err != nil {
		return nil, err
	}
	return cfg, nil
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
		if strings.HasSuffix(format, "errors in empty disjunction:") {
			continue // a summary of the errors that follow it
		}
		path := e.Path()
		if len(path) > 0 && path[0] == "#Config" {
			path = path[1:]
		}
		if format == "required field missing: %s" && len(args) == 1 {
			// Said the way checkFields says it, so that the two are
			// reported once: a model without kind gets both.
			path = append(slices.Clip(path), fmt.Sprint(args[0]))
			format = requiredMsg
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
			if strings.HasPrefix(en.format, "conflicting values ") && len(en.args) >= 2 {
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
				if en.format == requiredMsg {
					msg = requiredMsg
				}
				if strings.Contains(msg, durationPattern) {
					// The pattern of #Duration says little to an operator.
					msg = fmt.Sprintf("invalid duration %v: write it like %s", en.args[0], durationExamples)
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
			if at.format == "field not allowed" {
				msg += knownFields(data, at.path)
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
	return newError(issues)
}

// dropInsideUnknown drops the issues inside a field that is itself not
// allowed (CUE reports batching.max_batch_size of a causal-lm model as well
// as batching): removing the outer field fixes them all.
func dropInsideUnknown(issues []Issue) []Issue {
	var unknown []string
	for _, is := range issues {
		if strings.HasPrefix(is.Msg, "field not allowed") && is.Path != "" {
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
	if len(parent) == 1 && parent[0] == "models" {
		return "; a model name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
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
				is := Issue{Path: strings.Join(p, "."), Msg: requiredMsg}
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
				is := Issue{Path: strings.Join(p, "."), Msg: "field not allowed" + knownFields(root, p)}
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

// rawConfig and the types below mirror #Config field for field, for
// cue.Value.Decode.
type rawConfig struct {
	Listeners    []rawListener       `json:"listeners"`
	Runtime      rawRuntime          `json:"runtime"`
	Logging      rawLogging          `json:"logging"`
	Metrics      rawMetrics          `json:"metrics"`
	Server       rawServer           `json:"server"`
	Reload       rawReload           `json:"reload"`
	Models       map[string]rawModel `json:"models"`
	DefaultModel string              `json:"default_model"`
}

type rawListener struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
}

type rawRuntime struct {
	Library        string `json:"library"`
	InterOpThreads int    `json:"inter_op_threads"`
}

type rawLogging struct {
	Level      string `json:"level"`
	Format     string `json:"format"`
	AccessLog  bool   `json:"access_log"`
	LogPrompts bool   `json:"log_prompts"`
}

type rawMetrics struct {
	Enabled bool   `json:"enabled"`
	Path    string `json:"path"`
}

type rawServer struct {
	MaxBodyBytes   int    `json:"max_body_bytes"`
	RequestTimeout string `json:"request_timeout"`
	ShutdownGrace  string `json:"shutdown_grace"`
	ReadTimeout    string `json:"read_timeout"`
	IdleTimeout    string `json:"idle_timeout"`
}

type rawReload struct {
	Watch       bool   `json:"watch"`
	AdminSocket string `json:"admin_socket"`
}

type rawModel struct {
	Kind           string      `json:"kind"`
	Path           string      `json:"path"`
	Instances      int         `json:"instances"`
	IntraOpThreads int         `json:"intra_op_threads"`
	Batching       rawBatching `json:"batching"`
	MaxSequences   int         `json:"max_sequences"`
	MaxQueue       int         `json:"max_queue"`
	ContextLength  int         `json:"context_length"`
	Truncate       string      `json:"truncate"`
	ChatTemplate   string      `json:"chat_template"`
}

type rawBatching struct {
	Enabled       bool   `json:"enabled"`
	MaxBatchSize  int    `json:"max_batch_size"`
	MaxQueueDelay string `json:"max_queue_delay"`
	MaxQueueSize  int    `json:"max_queue_size"`
}

// checker makes the checks CUE does not: durations, and those that span
// fields. Each issue is placed at the offending value in the config file.
type checker struct {
	filename string
	data     cue.Value // the config file alone, for positions
	issues   []Issue
}

// errorf records an issue with the value at path, given as elements of an
// error path ("listeners", "1"), placed where the config file sets it.
func (c *checker) errorf(path []string, format string, args ...any) {
	is := Issue{Path: strings.Join(path, "."), Msg: fmt.Sprintf(format, args...)}
	if pos := nearestPos(c.filename, c.data, path); pos.IsValid() {
		setPos(&is, pos)
	}
	c.issues = append(c.issues, is)
}

// duration parses the duration s at path. A positive one must be above
// zero; max, when not zero, is the largest allowed.
func (c *checker) duration(path []string, s string, positive bool, max time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		// The schema's pattern admits only well-formed durations, so this
		// one is out of range (above about 2562047h).
		c.errorf(path, "invalid duration %q: write it like %s", s, durationExamples)
		return 0
	}
	switch {
	case positive && d <= 0:
		c.errorf(path, "invalid duration %q: must be above zero", s)
	case max > 0 && d > max:
		c.errorf(path, "invalid duration %q: must be at most %q", s, max.String())
	}
	return d
}

func (c *checker) convert(raw *rawConfig, abs string) *Config {
	cfg := &Config{
		Listeners: make([]Listener, len(raw.Listeners)),
		Runtime: Runtime{
			Library:        raw.Runtime.Library,
			InterOpThreads: raw.Runtime.InterOpThreads,
		},
		Logging:      Logging(raw.Logging),
		Metrics:      Metrics(raw.Metrics),
		Reload:       Reload(raw.Reload),
		Models:       make(map[string]Model, len(raw.Models)),
		DefaultModel: raw.DefaultModel,
		Path:         abs,
	}

	for i, l := range raw.Listeners {
		cfg.Listeners[i] = Listener(l)
	}
	if len(cfg.Listeners) == 0 {
		c.errorf([]string{"listeners"}, "at least one listener is required; remove listeners to listen on 127.0.0.1:8080")
	}
	c.checkListeners(cfg.Listeners)

	srv := func(name string) []string { return []string{"server", name} }
	cfg.Server = Server{
		MaxBodyBytes:   raw.Server.MaxBodyBytes,
		RequestTimeout: c.duration(srv("request_timeout"), raw.Server.RequestTimeout, true, 0),
		ShutdownGrace:  c.duration(srv("shutdown_grace"), raw.Server.ShutdownGrace, false, 0),
		ReadTimeout:    c.duration(srv("read_timeout"), raw.Server.ReadTimeout, true, 0),
		IdleTimeout:    c.duration(srv("idle_timeout"), raw.Server.IdleTimeout, true, 0),
	}

	dir := filepath.Dir(abs)
	for name, m := range raw.Models {
		path := m.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		model := Model{
			Name:           name,
			Kind:           m.Kind,
			Path:           filepath.Clean(path),
			Instances:      m.Instances,
			IntraOpThreads: m.IntraOpThreads,
		}
		switch m.Kind {
		case KindTensor:
			delay := []string{"models", label(name), "batching", "max_queue_delay"}
			model.Batching = Batching{
				Enabled:       m.Batching.Enabled,
				MaxBatchSize:  m.Batching.MaxBatchSize,
				MaxQueueDelay: c.duration(delay, m.Batching.MaxQueueDelay, false, maxQueueDelay),
				MaxQueueSize:  m.Batching.MaxQueueSize,
			}
		case KindCausalLM:
			model.MaxSequences = m.MaxSequences
			model.MaxQueue = m.MaxQueue
			model.ContextLength = m.ContextLength
			model.Truncate = m.Truncate
			model.ChatTemplate = m.ChatTemplate
		}
		cfg.Models[name] = model
	}

	if name := cfg.DefaultModel; name != "" {
		if m, ok := cfg.Models[name]; !ok {
			fix := "add it under models"
			if names := cfg.modelsOfKind(KindCausalLM); len(names) > 0 {
				fix += " or change default_model to one of: " + strings.Join(names, ", ")
			} else {
				fix += " or remove default_model"
			}
			c.errorf([]string{"default_model"}, "model %q is not configured; %s", name, fix)
		} else if m.Kind != KindCausalLM {
			fix := "remove default_model"
			if names := cfg.modelsOfKind(KindCausalLM); len(names) > 0 {
				fix = "change it to one of: " + strings.Join(names, ", ")
			}
			c.errorf([]string{"default_model"}, "model %q is a %q model; default_model picks the model of text generation requests (/v1), so it must name a %q model: %s", name, m.Kind, KindCausalLM, fix)
		}
	}
	return cfg
}

// checkListeners reports listeners that would fail to bind because an
// earlier one holds the same port on the same or an overlapping address.
func (c *checker) checkListeners(ls []Listener) {
	for i, l := range ls {
		for j := range i {
			overlap, same := overlaps(ls[j], l)
			if !overlap {
				continue
			}
			path := []string{"listeners", strconv.Itoa(i)}
			if same {
				c.errorf(path, "duplicate listener %q: listeners.%d already listens there; remove one or change its port", l.HostPort(), j)
			} else {
				c.errorf(path, "listener %q overlaps listeners.%d (%q) on the same port; change one port", l.HostPort(), j, ls[j].HostPort())
			}
		}
	}
}

// addrInfo is what a listen address binds on its port: every address (IPv4
// and IPv6), every IPv4 address, or one address.
type addrInfo struct {
	all, allV4 bool
	addr       netip.Addr
}

func parseAddr(s string) addrInfo {
	switch s {
	case "":
		return addrInfo{all: true}
	case "localhost":
		// net.Listen binds only the first address a name resolves to,
		// and Go resolves "localhost" to 127.0.0.1 first.
		return addrInfo{addr: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return addrInfo{} // the schema admits only IP literals here
	}
	a = a.Unmap()
	switch {
	case a == netip.IPv6Unspecified():
		// Go listens dual-stack on "::", taking IPv4 as well.
		return addrInfo{all: true}
	case a == netip.IPv4Unspecified():
		return addrInfo{allV4: true}
	}
	return addrInfo{addr: a}
}

// overlaps reports whether two listeners cannot both bind, and if so
// whether they name the same address.
func overlaps(a, b Listener) (overlap, same bool) {
	if a.Port != b.Port {
		return false, false
	}
	x, y := parseAddr(a.Address), parseAddr(b.Address)
	switch {
	case x == y:
		return true, true
	case x.all || y.all:
		return true, false
	case x.allV4:
		return y.addr.Is4(), false
	case y.allV4:
		return x.addr.Is4(), false
	}
	return false, false
}
