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
	Auth         Auth
	Access       Access
	Secrets      Secrets
	Abuse        Abuse
	Limits       Limits
	Alerts       Alerts
	UI           UI
	Cache        *Cache // nil: no response cache (cache.enabled false)
	Path         string // absolute path of the file this was loaded from

	// places are where the file sets each value: see Pos. Two loads of
	// files that differ only in layout or comments are therefore not
	// reflect.DeepEqual, which keeps the positions of a kept Config true.
	places *places
	// warnings are placed as places are, so SameSettings skips them too.
	warnings []Issue
}

// Warnings returns what Load found worth an operator's look in a valid
// file, such as a non-loopback listener without limits.global, sorted by
// position, each placed at the value it is about as Load's errors are:
// "config.cue:3:14: listeners.0.address: listener ... is not loopback and
// ...". A config without any returns nil. The slice is the caller's.
func (c *Config) Warnings() []Issue {
	return slices.Clone(c.warnings)
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
	TLS     *TLS // nil serves plain HTTP
}

// TLS is a listener's certificate and protocol floor.
type TLS struct {
	Cert       string // absolute path of the PEM certificate chain
	Key        string // absolute path of the PEM private key
	MinVersion string // "1.2" or "1.3"
	ClientCA   string // absolute path of PEM CAs for client certificates; "" asks for none
}

// Auth says who may call the API.
type Auth struct {
	// Open allows inference without a credential on non-loopback
	// listeners; without keys and JWT, loopback listeners are open
	// anyway.
	Open     bool
	APIKeys  map[string]APIKey // by name; never nil
	JWT      *JWT              // nil: bearer tokens are not accepted
	Rotation Rotation
}

// APIKey is one configured key; the file holds only its hash.
type APIKey struct {
	Name      string // the key under auth.api_keys
	Hash      string // "sha256:<64 hex digits>"
	Principal string // "" means Name
	Created   time.Time
	NotBefore time.Time // zero: unbounded
	NotAfter  time.Time // zero: unbounded
	Models    []string  // empty: every model
	AllowIPs  []string  // CIDRs or addresses; empty: access.allow_ips alone
	Scopes    []string  // empty: ["model:call"]
	Limit     string    // a key of limits.classes; "" for none
	NoCache   bool      // cache: false
}

// JWT configures bearer tokens.
type JWT struct {
	// HS256Secret is the shared secret as written: plain, or
	// "enc:v1:..." to be decrypted with the secrets key; "" for none.
	HS256Secret string
	PublicKeys  []JWTPublicKey
	JWKSFile    string // absolute path; "" for none
	Issuer      string // "" accepts any
	Audience    string // "" accepts any
	Leeway      time.Duration
}

// JWTPublicKey is a PEM public key file (RSA, EC P-256 or Ed25519).
type JWTPublicKey struct {
	File string // absolute path
	KID  string // "" matches tokens without a kid
}

// Rotation is the API key rotation policy.
type Rotation struct {
	WarnBefore time.Duration
	MaxAge     time.Duration
}

// Access is the IP allow list.
type Access struct {
	AllowIPs       []string // empty allows every address
	TrustedProxies []string
}

// Secrets locates the key that decrypts enc:v1: values.
type Secrets struct {
	KeyFile string // absolute path
}

// Abuse configures abuse detection.
type Abuse struct {
	AuthFailures Threshold // Count 0 turns it off
	Requests     Threshold // Count 0 turns it off
	BlockFor     time.Duration
	BlockStatus  int // 429 or 403
}

// Threshold is a count within a sliding window.
type Threshold struct {
	Count  int
	Window time.Duration
}

// Limits are the rate limits; nil and empty mean unlimited.
type Limits struct {
	Global  *Rate
	PerIP   *Rate
	Classes map[string]LimitClass // never nil
}

// Rate is a token bucket.
type Rate struct {
	RequestsPerSecond float64
	Burst             int
}

// LimitClass is the limit of the keys that name it.
type LimitClass struct {
	RequestsPerSecond float64 // 0: no request rate
	Burst             int
	TokensPerMinute   int // 0: no token budget
	MaxConcurrent     int // 0: unbounded
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
	Cores          int    // the scaling controllers' core budget; 0: GOMAXPROCS
	CacheDir       string // absolute path of the quantized-model cache
}

// Logging configures log output.
type Logging struct {
	Level      string // "debug", "info", "warn" or "error"
	Format     string // "json" or "text"
	AccessLog  bool
	LogPrompts bool
	// File is the absolute path of the log file; "" writes to stderr.
	File string
	// PromptMaxBytes caps each logged prompt and response.
	PromptMaxBytes int
	// Redact are RE2 patterns, each checked to compile; nil redacts
	// nothing.
	Redact []string
	// EncryptPrompts seals logged prompts and responses with the
	// secrets key instead of redacting them.
	EncryptPrompts bool
}

// Alerts are the alert thresholds. Every field is set: the file's value
// or its default.
type Alerts struct {
	ErrorRate    ErrorRateAlert
	LatencyP95   LatencyAlert
	QueueDepth   QueueDepthAlert
	ReloadFailed ReloadFailedAlert
	KeyExpiring  KeyExpiringAlert
	CPU          CPUAlert
	Webhook      *Webhook // nil: no webhook
}

// ErrorRateAlert is the share of model requests answered with a 5xx.
type ErrorRateAlert struct {
	Above    float64 // ratio in (0, 1]
	For      time.Duration
	Window   time.Duration
	Severity string
}

// LatencyAlert is the 95th percentile of request duration.
type LatencyAlert struct {
	Above    time.Duration // > 0
	For      time.Duration
	Window   time.Duration
	Model    string // "" watches every model
	Severity string
}

// QueueDepthAlert is the number of requests waiting in a model's queue.
type QueueDepthAlert struct {
	Above    float64 // > 0
	For      time.Duration
	Severity string
}

// ReloadFailedAlert is a failed config reload.
type ReloadFailedAlert struct {
	For      time.Duration
	Severity string
}

// KeyExpiringAlert is an API key's expiry coming close.
type KeyExpiringAlert struct {
	Within   time.Duration
	Severity string
}

// CPUAlert is the daemon's CPU use as a share of the machine's cores.
type CPUAlert struct {
	Above    float64 // in (0, 1]
	For      time.Duration
	Window   time.Duration
	Severity string
}

// Webhook is the receiver of the daemon's own alerts.
type Webhook struct {
	URL         string // absolute http or https URL; may hold userinfo, never log it
	Timeout     time.Duration
	MaxAttempts int
}

// Metrics configures the metrics endpoint.
// UI configures the built-in web pages.
type UI struct {
	Enabled bool `json:"enabled"`
}

type Metrics struct {
	Enabled     bool
	Path        string
	RequireAuth bool
}

// Server configures the HTTP server.
type Server struct {
	MaxBodyBytes   int
	RequestTimeout time.Duration // > 0
	ShutdownGrace  time.Duration // >= 0
	HeaderTimeout  time.Duration // > 0
	ReadTimeout    time.Duration // > 0
	IdleTimeout    time.Duration // > 0
	// MaxConnections and MaxConnectionsPerIP bound client connections;
	// 0 is no bound of the config's own.
	MaxConnections      int
	MaxConnectionsPerIP int
	AllowedHosts        []string // Host values accepted besides loopback's own
	CORSOrigins         []string // origins given CORS headers
}

// Reload configures how the running daemon picks up a changed config.
type Reload struct {
	Watch       bool
	AdminSocket string // "" when unset
}

// Model is one served model.
type Model struct {
	Name           string // the key under models
	Kind           string // "tensor", "causal-lm" or "embedding"
	Path           string // absolute path of the ONNX file (tensor) or model folder (causal-lm, embedding); not checked to exist
	Instances      int
	IntraOpThreads int
	// RequestTimeout overrides server.request_timeout for this model; 0
	// keeps the server's.
	RequestTimeout time.Duration
	NoCache        bool     // cache: false
	Batching       Batching // tensor and embedding models; zero for causal-lm
	Scaling        *Scaling // nil: Instances, fixed
	Quantization   string   // QuantizationNone or QuantizationInt8

	// The fields below are set for causal-lm models only.
	MaxSequences  int
	PrefillChunk  int
	MaxQueue      int
	ContextLength int    // 0: the model's own
	Truncate      string // "error" or "left"
	ChatTemplate  string // "": the model's own

	// Embedding is set for embedding models only; they use Batching too.
	Embedding Embedding
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
	KindTensor    = "tensor"
	KindCausalLM  = "causal-lm"
	KindEmbedding = "embedding"
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
	a.warnings, b.warnings = nil, nil
	return reflect.DeepEqual(a, b)
}
