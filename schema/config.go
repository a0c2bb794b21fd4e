package schema

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a loaded, validated configuration file. Load and Parse return a
// fresh value each time, but callers share it once loaded (the running
// daemon, the reloader, the admin endpoint), so treat it as read-only: copy
// before changing anything, including the Listeners slice and Models map.
//
// The meaning and default of each field is documented in config.cue.
type Config struct {
	Listeners    []Listener
	Runtime      Runtime
	Logging      Logging
	Metrics      Metrics
	Server       Server
	Reload       Reload
	Models       map[string]Model // keyed by Model.Name; never nil
	DefaultModel string           // "" when unset
	Path         string           // absolute path of the file this was loaded from

	// places are where the file sets each value: see Pos. Two loads of
	// files that differ only in layout or comments are therefore not
	// reflect.DeepEqual, which keeps the positions of a kept Config true.
	places *places
}

// Pos returns where the config file sets the value at path, as
// "file:line:col" with the file named as it was to Load, or "" when the
// file does not set it (the value is a default). path is a CUE path as
// Issue.Path writes it, such as "listeners.0.port" or, for a model,
// Model.FieldPath("path"). A value the file sets in several places (by
// unification, or through a pattern or a definition) is at the place CUE
// gives it.
func (c *Config) Pos(path string) string {
	if c.places == nil {
		return ""
	}
	pl, ok := c.places.at[path]
	if !ok || pl.line == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", c.places.filename, pl.line, pl.col)
}

// Issue returns a problem with the value at path (as for Pos) that Load
// cannot find, such as a model file that does not exist, placed like the
// issues Load reports: where the file sets the value, else where it sets
// the closest enclosing one, else at the top of the file. Wrapped in an
// *Error it reads as Load's errors do:
//
//	err := &schema.Error{Issues: []schema.Issue{cfg.Issue(m.FieldPath("path"), "no such file")}}
//	// err.Error(): config.cue:12:9: models.qwen.path: no such file
func (c *Config) Issue(path, msg string) Issue {
	is := Issue{Path: path, Msg: msg}
	if c.places == nil {
		return is
	}
	is.Filename, is.Line, is.Column = c.places.filename, 1, 1
	for p := path; p != ""; {
		pl, ok := c.places.at[p]
		switch {
		case ok && pl.line > 0:
			is.Line, is.Column = pl.line, pl.col
			return is
		case ok:
			p = pl.parent
		default:
			// Not in the file: try the enclosing path. A cut inside a
			// quoted label ("types.v2") is no path of the file either,
			// so it is skipped the same way.
			i := strings.LastIndexByte(p, '.')
			p = p[:max(i, 0)]
		}
	}
	return is
}

// Listener is an address the HTTP API is served on.
type Listener struct {
	Address string // IP literal, "localhost", or "" for all addresses
	Port    int
}

// HostPort returns the address in the form net.Listen takes, such as
// "127.0.0.1:8080" or "[::1]:8080".
func (l Listener) HostPort() string {
	return net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
}

// Runtime configures the ONNX Runtime shared library.
type Runtime struct {
	Library        string // "" means search the default places
	InterOpThreads int
}

// Logging configures log output.
type Logging struct {
	Level      string // "debug", "info", "warn" or "error"
	Format     string // "json" or "text"
	AccessLog  bool
	LogPrompts bool
}

// Metrics configures the metrics endpoint.
type Metrics struct {
	Enabled bool
	Path    string
}

// Server configures the HTTP server.
type Server struct {
	MaxBodyBytes   int
	RequestTimeout time.Duration // > 0
	ShutdownGrace  time.Duration // >= 0
	ReadTimeout    time.Duration // > 0
	IdleTimeout    time.Duration // > 0
}

// Reload configures how the running daemon picks up a changed config.
type Reload struct {
	Watch       bool
	AdminSocket string // "" when unset
}

// Model is one served model.
type Model struct {
	Name           string // the key under models
	Kind           string // "tensor" or "causal-lm"
	Path           string // absolute path of the ONNX file (tensor) or model folder (causal-lm); not checked to exist
	Instances      int
	IntraOpThreads int
	Batching       Batching // tensor models only; zero for causal-lm

	// The fields below are set for causal-lm models only.
	MaxSequences  int
	MaxQueue      int
	ContextLength int    // 0: the model's own
	Truncate      string // "error" or "left"
	ChatTemplate  string // "": the model's own
}

// FieldPath returns the CUE path of a field of the model, such as
// models.qwen.path or models."types.v2".path, for Config.Pos and
// Config.Issue.
func (m Model) FieldPath(field string) string {
	return "models." + label(m.Name) + "." + field
}

// Batching configures how concurrent requests to a model are batched.
type Batching struct {
	Enabled       bool
	MaxBatchSize  int
	MaxQueueDelay time.Duration // 0 to 10s
	MaxQueueSize  int
}

// Kinds of models.
const (
	KindTensor   = "tensor"
	KindCausalLM = "causal-lm"
)

// ModelNames returns the names of the configured models, sorted.
func (c *Config) ModelNames() []string {
	names := make([]string, 0, len(c.Models))
	for name := range c.Models {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// modelsOfKind returns the names of the configured models of kind, sorted.
func (c *Config) modelsOfKind(kind string) []string {
	var names []string
	for _, name := range c.ModelNames() {
		if c.Models[name].Kind == kind {
			names = append(names, name)
		}
	}
	return names
}

// SameSettings reports whether two loaded configs set the same values,
// wherever in their files they set them: an edit of comments or layout
// alone changes nothing a reload would apply.
func (c *Config) SameSettings(o *Config) bool {
	a, b := *c, *o
	a.places, b.places = nil, nil
	return reflect.DeepEqual(a, b)
}
