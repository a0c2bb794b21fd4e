package daemon

import (
	"fmt"

	"github.com/aiassist/aiassist/daemon/observe"
	"github.com/aiassist/aiassist/daemon/secret"
	"github.com/aiassist/aiassist/schema"
)

// encryptPromptsPath leads buildPrompts' errors, which are about it.
const encryptPromptsPath = "logging.encrypt_prompts"

// buildPrompts makes how a config generation logs prompts and responses:
// nil when it does not (logging.log_prompts or access_log off). With
// logging.encrypt_prompts it reads the secrets key, so a key that cannot
// be read fails the load, not the requests.
func buildPrompts(cfg *schema.Config) (*observe.Prompts, error) {
	l := cfg.Logging
	if !l.LogPrompts || !l.AccessLog {
		return nil, nil
	}
	o := observe.PromptOptions{MaxBytes: l.PromptMaxBytes, Redact: l.Redact}
	if l.EncryptPrompts {
		key, err := secret.LoadKeyFile(cfg.Secrets.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read the secrets key (secrets.key_file) that seals the logged prompts: %w", encryptPromptsPath, err)
		}
		if o.Sealer, err = secret.NewSealer(key); err != nil {
			return nil, fmt.Errorf("%s: secrets.key_file: %w", encryptPromptsPath, err)
		}
	}
	return observe.NewPrompts(o)
}
