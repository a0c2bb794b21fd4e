package schema

import (
	"fmt"
	"math"
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
	Auth         rawAuth             `json:"auth"`
	Access       rawAccess           `json:"access"`
	Secrets      rawSecrets          `json:"secrets"`
	Abuse        rawAbuse            `json:"abuse"`
	Limits       rawLimits           `json:"limits"`
	Alerts       rawAlerts           `json:"alerts"`
	UI           UI                  `json:"ui"`
	Cache        rawCache            `json:"cache"`
}

type rawListener struct {
	Address string  `json:"address"`
	Port    int     `json:"port"`
	TLS     *rawTLS `json:"tls"`
}

type rawTLS struct {
	Cert       string `json:"cert"`
	Key        string `json:"key"`
	MinVersion string `json:"min_version"`
	ClientCA   string `json:"client_ca"`
}

type rawAuth struct {
	Open     bool                 `json:"open"`
	APIKeys  map[string]rawAPIKey `json:"api_keys"`
	JWT      *rawJWT              `json:"jwt"`
	Rotation rawRotation          `json:"rotation"`
}

type rawAPIKey struct {
	Hash      string   `json:"hash"`
	Principal string   `json:"principal"`
	Created   string   `json:"created"`
	NotBefore string   `json:"not_before"`
	NotAfter  string   `json:"not_after"`
	Models    []string `json:"models"`
	AllowIPs  []string `json:"allow_ips"`
	Scopes    []string `json:"scopes"`
	Limit     string   `json:"limit"`
	Cache     bool     `json:"cache"`
}

type rawJWT struct {
	HS256Secret string            `json:"hs256_secret"`
	PublicKeys  []rawJWTPublicKey `json:"public_keys"`
	JWKSFile    string            `json:"jwks_file"`
	Issuer      string            `json:"issuer"`
	Audience    string            `json:"audience"`
	Leeway      string            `json:"leeway"`
}

type rawJWTPublicKey struct {
	File string `json:"file"`
	KID  string `json:"kid"`
}

type rawRotation struct {
	WarnBefore string `json:"warn_before"`
	MaxAge     string `json:"max_age"`
}

type rawAccess struct {
	AllowIPs       []string `json:"allow_ips"`
	TrustedProxies []string `json:"trusted_proxies"`
}

type rawSecrets struct {
	KeyFile string `json:"key_file"`
}

type rawAbuse struct {
	AuthFailures rawThreshold `json:"auth_failures"`
	Requests     rawThreshold `json:"requests"`
	BlockFor     string       `json:"block_for"`
	BlockStatus  int          `json:"block_status"`
}

type rawThreshold struct {
	Count  int    `json:"count"`
	Window string `json:"window"`
}

type rawLimits struct {
	Global  *rawRate                 `json:"global"`
	PerIP   *rawRate                 `json:"per_ip"`
	Classes map[string]rawLimitClass `json:"classes"`
}

// rawRate and rawLimitClass leave a field out as 0, which the schema's
// bounds make impossible to write.
type rawRate struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
}

type rawLimitClass struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
	TokensPerMinute   int     `json:"tokens_per_minute"`
	MaxConcurrent     int     `json:"max_concurrent"`
}

type rawRuntime struct {
	Library        string `json:"library"`
	InterOpThreads int    `json:"inter_op_threads"`
	Cores          int    `json:"cores"`
	CacheDir       string `json:"cache_dir"`
}

type rawLogging struct {
	Level          string   `json:"level"`
	Format         string   `json:"format"`
	AccessLog      bool     `json:"access_log"`
	LogPrompts     bool     `json:"log_prompts"`
	File           string   `json:"file"`
	PromptMaxBytes int      `json:"prompt_max_bytes"`
	Redact         []string `json:"redact"`
	EncryptPrompts bool     `json:"encrypt_prompts"`
}

type rawAlerts struct {
	ErrorRate struct {
		Above    float64 `json:"above"`
		For      string  `json:"for"`
		Window   string  `json:"window"`
		Severity string  `json:"severity"`
	} `json:"error_rate"`
	LatencyP95 struct {
		Above    string `json:"above"`
		For      string `json:"for"`
		Window   string `json:"window"`
		Model    string `json:"model"`
		Severity string `json:"severity"`
	} `json:"latency_p95"`
	QueueDepth struct {
		Above    float64 `json:"above"`
		For      string  `json:"for"`
		Severity string  `json:"severity"`
	} `json:"queue_depth"`
	ReloadFailed struct {
		For      string `json:"for"`
		Severity string `json:"severity"`
	} `json:"reload_failed"`
	KeyExpiring struct {
		Within   string `json:"within"`
		Severity string `json:"severity"`
	} `json:"key_expiring"`
	CPU struct {
		Above    float64 `json:"above"`
		For      string  `json:"for"`
		Window   string  `json:"window"`
		Severity string  `json:"severity"`
	} `json:"cpu"`
	Webhook *struct {
		URL         string `json:"url"`
		Timeout     string `json:"timeout"`
		MaxAttempts int    `json:"max_attempts"`
	} `json:"webhook"`
}

type rawMetrics struct {
	Enabled     bool   `json:"enabled"`
	Path        string `json:"path"`
	RequireAuth bool   `json:"require_auth"`
}

type rawServer struct {
	MaxBodyBytes        int      `json:"max_body_bytes"`
	RequestTimeout      string   `json:"request_timeout"`
	ShutdownGrace       string   `json:"shutdown_grace"`
	ReadTimeout         string   `json:"read_timeout"`
	HeaderTimeout       string   `json:"header_timeout"`
	IdleTimeout         string   `json:"idle_timeout"`
	MaxConnections      int      `json:"max_connections"`
	MaxConnectionsPerIP int      `json:"max_connections_per_ip"`
	AllowedHosts        []string `json:"allowed_hosts"`
	CORSOrigins         []string `json:"cors_origins"`
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
	RequestTimeout string      `json:"request_timeout"`
	Batching       rawBatching `json:"batching"`
	MaxSequences   int         `json:"max_sequences"`
	PrefillChunk   int         `json:"prefill_chunk"`
	MaxQueue       int         `json:"max_queue"`
	ContextLength  int         `json:"context_length"`
	Truncate       string      `json:"truncate"`
	ChatTemplate   string      `json:"chat_template"`
	Cache          *bool       `json:"cache"` // nil for a kind without the field
	Scaling        *rawScaling `json:"scaling"`
	rawEmbedding
	Quantization string `json:"quantization"`
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
	warnings []Issue
}

// issue returns an issue with the value at path, given as elements of an
// error path ("listeners", "1"), placed where the config file sets it.
func (c *checker) issue(path []string, format string, args ...any) Issue {
	is := Issue{Path: strings.Join(path, "."), Msg: fmt.Sprintf(format, args...)}
	if pos := nearestPos(c.filename, c.data, path); pos.IsValid() {
		setPos(&is, pos)
	} else {
		// A default the file does not set, in a file that sets nothing
		// around it: the file as a whole is at fault.
		is.Filename, is.Line, is.Column = c.filename, 1, 1
	}
	return is
}

// errorf records an issue with the value at path that makes the config
// invalid.
func (c *checker) errorf(path []string, format string, args ...any) {
	c.issues = append(c.issues, c.issue(path, format, args...))
}

// warnf records an issue with the value at path that leaves the config
// valid but is worth an operator's look: see Config.Warnings.
func (c *checker) warnf(path []string, format string, args ...any) {
	c.warnings = append(c.warnings, c.issue(path, format, args...))
}

// duration parses the duration s at path. A positive one must be above
// zero; max, when not zero, is the largest allowed.
func (c *checker) duration(path []string, s string, positive bool, max time.Duration) time.Duration {
	d, ok := c.parseDuration(path, s)
	switch {
	case !ok:
	case positive && d <= 0:
		c.errorf(path, "invalid duration %q: must be above zero", s)
	case max > 0 && d > max:
		c.errorf(path, "invalid duration %q: must be at most %q", s, formatDuration(max))
	}
	return d
}

// durationIn parses the duration s at path, which must be from lo to hi.
func (c *checker) durationIn(path []string, s string, lo, hi time.Duration) time.Duration {
	d, ok := c.parseDuration(path, s)
	if ok && (d < lo || d > hi) {
		c.errorf(path, "invalid duration %q: must be from %q to %q", s, formatDuration(lo), formatDuration(hi))
	}
	return d
}

func (c *checker) parseDuration(path []string, s string) (time.Duration, bool) {
	d, err := parseDuration(s)
	if err != nil {
		// The schema's pattern admits only well-formed durations, so this
		// one is out of range (above about 2562047h, or 106751d).
		c.errorf(path, "invalid duration %q: write it like %s", s, durationExamples)
		return 0, false
	}
	return d, true
}

// timeAt parses the RFC 3339 time s at path; "" (left out) is the zero
// time.
func (c *checker) timeAt(path []string, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// The schema admits only RFC 3339 times, but says so less
		// clearly.
		c.errorf(path, "invalid time %q: write it in RFC 3339, like \"2027-03-01T00:00:00Z\"", s)
	}
	// In UTC, so that two files that say the same instant with other
	// offsets have the same settings.
	return t.UTC()
}

// resolve makes path, as the config file writes it, absolute against dir,
// the config file's directory; "" (left out) stays "".
func resolve(dir, path string) string {
	if path == "" {
		return ""
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return filepath.Clean(path)
}

// list keeps a list the file leaves empty as nil, so that two configs
// that say the same compare equal.
func list(xs []string) []string {
	if len(xs) == 0 {
		return nil
	}
	return xs
}

// burst is the burst of a bucket of rate rps that sets burst (0 when left
// out): by default one second's worth of requests, at least 1. A bucket
// without a rate has no burst.
func burst(rps float64, burst int) int {
	switch {
	case burst > 0:
		return burst
	case rps <= 0:
		return 0
	}
	return max(1, int(math.Ceil(rps)))
}

// convert turns the decoded file into a Config, parsing durations and
// times and resolving paths, then makes the checks that span fields.
func (c *checker) convert(raw *rawConfig, abs string) *Config {
	dir := filepath.Dir(abs)
	cfg := &Config{
		Listeners: make([]Listener, len(raw.Listeners)),
		Runtime: Runtime{
			Library:        raw.Runtime.Library,
			InterOpThreads: raw.Runtime.InterOpThreads,
			Cores:          raw.Runtime.Cores,
			CacheDir:       resolve(dir, raw.Runtime.CacheDir),
		},
		Logging: Logging{
			Level:          raw.Logging.Level,
			Format:         raw.Logging.Format,
			AccessLog:      raw.Logging.AccessLog,
			LogPrompts:     raw.Logging.LogPrompts,
			File:           resolve(dir, raw.Logging.File),
			PromptMaxBytes: raw.Logging.PromptMaxBytes,
			Redact:         redactPatterns(raw.Logging.Redact),
			EncryptPrompts: raw.Logging.EncryptPrompts,
		},
		Metrics:      Metrics(raw.Metrics),
		UI:           raw.UI,
		Reload:       Reload(raw.Reload),
		Models:       make(map[string]Model, len(raw.Models)),
		DefaultModel: raw.DefaultModel,
		Path:         abs,
	}

	for i, l := range raw.Listeners {
		cfg.Listeners[i] = Listener{Address: l.Address, Port: l.Port}
		if t := l.TLS; t != nil {
			cfg.Listeners[i].TLS = &TLS{
				Cert:       resolve(dir, t.Cert),
				Key:        resolve(dir, t.Key),
				MinVersion: t.MinVersion,
				ClientCA:   resolve(dir, t.ClientCA),
			}
		}
	}

	srv := func(name string) []string { return []string{"server", name} }
	cfg.Server = Server{
		MaxBodyBytes:        raw.Server.MaxBodyBytes,
		RequestTimeout:      c.duration(srv("request_timeout"), raw.Server.RequestTimeout, true, 0),
		ShutdownGrace:       c.duration(srv("shutdown_grace"), raw.Server.ShutdownGrace, false, 0),
		HeaderTimeout:       c.duration(srv("header_timeout"), raw.Server.HeaderTimeout, true, 0),
		ReadTimeout:         c.duration(srv("read_timeout"), raw.Server.ReadTimeout, true, 0),
		IdleTimeout:         c.duration(srv("idle_timeout"), raw.Server.IdleTimeout, true, 0),
		MaxConnections:      raw.Server.MaxConnections,
		MaxConnectionsPerIP: raw.Server.MaxConnectionsPerIP,
		AllowedHosts:        list(raw.Server.AllowedHosts),
		CORSOrigins:         list(raw.Server.CORSOrigins),
	}

	for name, m := range raw.Models {
		model := Model{
			Name:           name,
			Kind:           m.Kind,
			Path:           resolve(dir, m.Path),
			Instances:      m.Instances,
			IntraOpThreads: m.IntraOpThreads,
			NoCache:        m.Cache != nil && !*m.Cache,
			Quantization:   m.Quantization,
		}
		if m.RequestTimeout != "" {
			at := []string{"models", label(name), "request_timeout"}
			model.RequestTimeout = c.durationIn(at, m.RequestTimeout, minModelTimeout, maxModelTimeout)
		}
		model.Scaling = c.convertScaling(name, m.Scaling)
		switch m.Kind {
		case KindTensor:
			delay := []string{"models", label(name), "batching", "max_queue_delay"}
			model.Batching = Batching{
				Enabled:       m.Batching.Enabled,
				MaxBatchSize:  m.Batching.MaxBatchSize,
				MaxQueueDelay: c.duration(delay, m.Batching.MaxQueueDelay, false, maxQueueDelay),
				MaxQueueSize:  m.Batching.MaxQueueSize,
			}
		case KindEmbedding:
			c.convertEmbedding(&model, &m)
		case KindCausalLM:
			model.MaxSequences = m.MaxSequences
			model.PrefillChunk = m.PrefillChunk
			model.MaxQueue = m.MaxQueue
			model.ContextLength = m.ContextLength
			model.Truncate = m.Truncate
			model.ChatTemplate = m.ChatTemplate
		}
		cfg.Models[name] = model
	}

	cfg.Auth = c.convertAuth(&raw.Auth, dir)
	cfg.Access = Access{AllowIPs: list(raw.Access.AllowIPs), TrustedProxies: list(raw.Access.TrustedProxies)}
	cfg.Secrets = Secrets{KeyFile: resolve(dir, raw.Secrets.KeyFile)}
	ab := func(elem ...string) []string { return append([]string{"abuse"}, elem...) }
	cfg.Abuse = Abuse{
		AuthFailures: Threshold{
			Count:  raw.Abuse.AuthFailures.Count,
			Window: c.duration(ab("auth_failures", "window"), raw.Abuse.AuthFailures.Window, true, 0),
		},
		Requests: Threshold{
			Count:  raw.Abuse.Requests.Count,
			Window: c.duration(ab("requests", "window"), raw.Abuse.Requests.Window, true, 0),
		},
		BlockFor:    c.duration(ab("block_for"), raw.Abuse.BlockFor, false, 0),
		BlockStatus: raw.Abuse.BlockStatus,
	}
	cfg.Limits = convertLimits(&raw.Limits)
	cfg.Alerts = c.convertAlerts(&raw.Alerts)
	cfg.Cache = c.convertCache(&raw.Cache)

	c.check(cfg)
	return cfg
}

// Bounds of the durations of the gateway and of a model's own timeout.
const (
	// maxLeeway bounds auth.jwt.leeway: a larger one would keep expired
	// tokens working for longer than a clock can plausibly be off.
	maxLeeway       = 5 * time.Minute
	minModelTimeout = time.Second
	maxModelTimeout = 300 * time.Second
)

func (c *checker) convertAuth(raw *rawAuth, dir string) Auth {
	a := Auth{
		Open:    raw.Open,
		APIKeys: make(map[string]APIKey, len(raw.APIKeys)),
		Rotation: Rotation{
			WarnBefore: c.duration([]string{"auth", "rotation", "warn_before"}, raw.Rotation.WarnBefore, false, 0),
			MaxAge:     c.duration([]string{"auth", "rotation", "max_age"}, raw.Rotation.MaxAge, false, 0),
		},
	}
	for name, k := range raw.APIKeys {
		at := func(field string) []string { return []string{"auth", "api_keys", label(name), field} }
		// An empty list would mean what leaving it out means, the
		// opposite of what it seems to say.
		if k.Models != nil && len(k.Models) == 0 {
			c.errorf(at("models"), "an empty list of models allows every model, as leaving models out does; name the models the key may call, or leave models out")
		}
		if k.Scopes != nil && len(k.Scopes) == 0 {
			c.errorf(at("scopes"), `an empty list of scopes grants "model:call", as leaving scopes out does; name the scopes, or leave scopes out`)
		}
		a.APIKeys[name] = APIKey{
			Name:      name,
			Hash:      k.Hash,
			Principal: k.Principal,
			Created:   c.timeAt(at("created"), k.Created),
			NotBefore: c.timeAt(at("not_before"), k.NotBefore),
			NotAfter:  c.timeAt(at("not_after"), k.NotAfter),
			Models:    list(k.Models),
			AllowIPs:  list(k.AllowIPs),
			Scopes:    list(k.Scopes),
			Limit:     k.Limit,
			NoCache:   !k.Cache,
		}
	}
	if j := raw.JWT; j != nil {
		a.JWT = &JWT{
			HS256Secret: j.HS256Secret,
			JWKSFile:    resolve(dir, j.JWKSFile),
			Issuer:      j.Issuer,
			Audience:    j.Audience,
			Leeway:      c.duration([]string{"auth", "jwt", "leeway"}, j.Leeway, false, maxLeeway),
		}
		for _, k := range j.PublicKeys {
			a.JWT.PublicKeys = append(a.JWT.PublicKeys, JWTPublicKey{File: resolve(dir, k.File), KID: k.KID})
		}
	}
	return a
}

// Bounds of the alerts' durations. A window is at most what the
// in-process evaluator keeps of its history.
const (
	minAlertWindow = time.Second
	maxAlertWindow = day
	minWebhookWait = time.Second
	maxWebhookWait = 5 * time.Minute
)

func (c *checker) convertAlerts(raw *rawAlerts) Alerts {
	at := func(elem ...string) []string { return append([]string{"alerts"}, elem...) }
	// Prometheus and the evaluator count in milliseconds.
	ms := func(path []string, s string, d time.Duration) time.Duration {
		if d%time.Millisecond != 0 {
			c.errorf(path, "invalid duration %q: must be a whole number of milliseconds, as Prometheus counts", s)
		}
		return d
	}
	hold := func(name, s string) time.Duration {
		p := at(name, "for")
		return ms(p, s, c.duration(p, s, false, 0))
	}
	window := func(name, s string) time.Duration {
		p := at(name, "window")
		return ms(p, s, c.durationIn(p, s, minAlertWindow, maxAlertWindow))
	}
	er, lat, q, rl, key, cpu := &raw.ErrorRate, &raw.LatencyP95, &raw.QueueDepth, &raw.ReloadFailed, &raw.KeyExpiring, &raw.CPU
	a := Alerts{
		ErrorRate: ErrorRateAlert{Above: er.Above, For: hold("error_rate", er.For), Window: window("error_rate", er.Window), Severity: er.Severity},
		LatencyP95: LatencyAlert{
			Above:    ms(at("latency_p95", "above"), lat.Above, c.duration(at("latency_p95", "above"), lat.Above, true, 0)),
			For:      hold("latency_p95", lat.For),
			Window:   window("latency_p95", lat.Window),
			Model:    lat.Model,
			Severity: lat.Severity,
		},
		QueueDepth:   QueueDepthAlert{Above: q.Above, For: hold("queue_depth", q.For), Severity: q.Severity},
		ReloadFailed: ReloadFailedAlert{For: hold("reload_failed", rl.For), Severity: rl.Severity},
		KeyExpiring: KeyExpiringAlert{
			Within:   ms(at("key_expiring", "within"), key.Within, c.duration(at("key_expiring", "within"), key.Within, false, 0)),
			Severity: key.Severity,
		},
		CPU: CPUAlert{Above: cpu.Above, For: hold("cpu", cpu.For), Window: window("cpu", cpu.Window), Severity: cpu.Severity},
	}
	if w := raw.Webhook; w != nil {
		a.Webhook = &Webhook{
			URL:         w.URL,
			Timeout:     c.durationIn(at("webhook", "timeout"), w.Timeout, minWebhookWait, maxWebhookWait),
			MaxAttempts: w.MaxAttempts,
		}
	}
	return a
}

func convertLimits(raw *rawLimits) Limits {
	rate := func(r *rawRate) *Rate {
		if r == nil {
			return nil
		}
		return &Rate{RequestsPerSecond: r.RequestsPerSecond, Burst: burst(r.RequestsPerSecond, r.Burst)}
	}
	l := Limits{
		Global:  rate(raw.Global),
		PerIP:   rate(raw.PerIP),
		Classes: make(map[string]LimitClass, len(raw.Classes)),
	}
	for name, cl := range raw.Classes {
		l.Classes[name] = LimitClass{
			RequestsPerSecond: cl.RequestsPerSecond,
			Burst:             burst(cl.RequestsPerSecond, cl.Burst),
			TokensPerMinute:   cl.TokensPerMinute,
			MaxConcurrent:     cl.MaxConcurrent,
		}
	}
	return l
}
