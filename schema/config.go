package schema

import (
	"net"
	"slices"
	"strconv"
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
