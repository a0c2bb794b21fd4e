package schema

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"cuelang.org/go/cue"
)

// maxQueueDelay bounds batching.max_queue_delay: a longer wait would hold
// every request of a quiet model for longer than any client would expect.
const maxQueueDelay = 10 * time.Second

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

// convert turns the decoded file into a Config, parsing durations and
// resolving model paths, then makes the checks that span fields.
func (c *checker) convert(raw *rawConfig, abs string) *Config {
	cfg := &Config{
		Listeners: make([]Listener, len(raw.Listeners)),
		Runtime: Runtime{
			Library:        raw.Runtime.Library,
			InterOpThreads: raw.Runtime.InterOpThreads,
		},
		Logging:      Logging(raw.Logging),
		Metrics:      Metrics{Enabled: raw.Metrics.Enabled, Path: raw.Metrics.Path},
		Reload:       Reload(raw.Reload),
		Models:       make(map[string]Model, len(raw.Models)),
		DefaultModel: raw.DefaultModel,
		Path:         abs,
	}

	for i, l := range raw.Listeners {
		cfg.Listeners[i] = Listener{Address: l.Address, Port: l.Port}
	}

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

	c.check(cfg)
	return cfg
}
