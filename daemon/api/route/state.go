package route

import (
	"time"

	"github.com/aiassist/aiassist/daemon/cache"
	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/limit"
	"github.com/aiassist/aiassist/daemon/observe"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/embed"
	"github.com/aiassist/aiassist/engine/generate"
)

// State is what one configuration generation serves. It is never changed
// after the daemon publishes it.
type State struct {
	Generation uint64
	// Models are the tensor models, by name, served by the KServe routes.
	Models map[string]*engine.TensorModel
	// Generators are the causal-lm models, by name, served by the /v1
	// routes.
	Generators map[string]*generate.Model
	// Embedders are the embedding models, by name, served by
	// /v1/embeddings.
	Embedders map[string]*embed.Model
	// DefaultModel is the generator a /v1 request without "model" gets;
	// "" makes such requests name one.
	DefaultModel string
	// Prompts, when set (logging.log_prompts), adds the prompt and the
	// generated text to the access log lines of generation requests,
	// capped, redacted or sealed.
	Prompts        *observe.Prompts
	RequestTimeout time.Duration
	// ModelTimeouts override RequestTimeout for the models that set
	// their own request_timeout.
	ModelTimeouts map[string]time.Duration
	// MetricsPath is where metrics are served; "" turns them off.
	MetricsPath string
	AccessLog   bool
	// NoUI turns the built-in pages and /status.json off (ui.enabled
	// false): they answer 404.
	NoUI bool
	// Gate checks who may call what; nil checks nothing.
	Gate *gate.Gate
	// Limits are the rate limits; nil limits nothing.
	Limits *limit.Limiter
	// Cache keeps the answers to repeated requests; nil caches nothing.
	// It outlives the State: a reload passes it on.
	Cache *cache.Cache
	// CacheModels are the identities of the models whose answers are
	// cached, by name (a model with cache: false is not in it).
	CacheModels map[string]string
	// CacheSampled caches requests whose answer is random too.
	CacheSampled bool
}
