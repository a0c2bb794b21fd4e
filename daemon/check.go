package daemon

import (
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/listener"
	"github.com/aiassist/aiassist/schema"
)

// Check opens what a load of cfg would open, short of loading models into
// ONNX Runtime or binding sockets: every model's files (the layout a
// causal-lm folder needs included), the listeners' certificates and keys,
// the JWT key files and the secrets key for enc:v1: values. It returns a
// *schema.Error whose issues carry the file:line:col of the config value
// at fault, or nil. aiassistd check, and so the systemd unit's
// ExecReload, rely on it: a file it passes is one a reload can apply, but
// for ONNX Runtime refusing a model it can read, or an address in use.
func Check(cfg *schema.Config) error {
	var issues []schema.Issue
	for _, name := range cfg.ModelNames() {
		m := cfg.Models[name]
		if _, err := modelFiles(m); err != nil {
			issues = append(issues, cfg.Issue(m.FieldPath("path"), "cannot open the model: "+err.Error()))
		}
	}
	for i, spec := range listenSpecs(cfg) {
		if spec.TLS == nil {
			continue
		}
		if err := listener.CheckTLS(spec.TLS); err != nil {
			issues = append(issues, cfg.Issue("listeners."+strconv.Itoa(i)+".tls", err.Error()))
		}
	}
	// The gate reads the JWT key files and decrypts the secrets; its
	// errors name the config section.
	if _, err := buildGate(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.NewSet()); err != nil {
		section := gateSection(err)
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), section), ": ")
		issues = append(issues, cfg.Issue(section, msg))
	}
	if _, err := buildLimits(cfg, nil, metrics.NewSet()); err != nil {
		issues = append(issues, cfg.Issue("limits", err.Error()))
	}
	// encrypt_prompts reads the secrets key.
	if _, err := buildPrompts(cfg); err != nil {
		issues = append(issues, cfg.Issue(encryptPromptsPath, strings.TrimPrefix(err.Error(), encryptPromptsPath+": ")))
	}
	return schema.NewError(issues)
}

// gateSection is the config path a gate error is about, from the prefix
// the gate and buildGate give their errors.
func gateSection(err error) string {
	msg := err.Error()
	for _, p := range []string{"auth.jwt.hs256_secret", "access.allow_ips", "access.trusted_proxies", "server.allowed_hosts", "server.cors_origins", "metrics", "auth"} {
		if strings.HasPrefix(msg, p) {
			return p
		}
	}
	return "auth"
}
