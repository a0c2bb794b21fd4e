package generate

import (
	"fmt"
	"os"

	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/engine/chattemplate"
)

// Message is one turn of a chat.
type Message struct {
	Role    string
	Content string
}

// chatConfig is the model's chat template and special token strings.
type chatConfig struct {
	tmpl               *chattemplate.Template
	bosToken, eosToken string
}

// loadChatConfig reads the tokenizer_config.json at path, if path is not
// ""; override, if set, replaces its chat template.
func loadChatConfig(path, override string) (*chatConfig, error) {
	var cfg chattemplate.Config
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if cfg, err = chattemplate.ParseTokenizerConfig(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if override != "" {
		cfg.Template = override
	}
	c := &chatConfig{bosToken: cfg.BOSToken, eosToken: cfg.EOSToken}
	if cfg.Template != "" {
		var err error
		if c.tmpl, err = chattemplate.Parse(cfg.Template, cfg.BOSToken, cfg.EOSToken); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ApplyChatTemplate renders messages with the model's chat template, with
// the assistant's turn opened if addGenerationPrompt is set. The result
// usually starts with the BOS token already, so generate it with
// AddSpecialTokens off. A conversation the template refuses (a role it does
// not know, turns out of order) gives an error wrapping
// engine.ErrInvalidInput.
func (m *Model) ApplyChatTemplate(messages []Message, addGenerationPrompt bool) (string, error) {
	if m.chat.tmpl == nil {
		return "", fmt.Errorf("%w: model %q has no chat template; set chat_template in the model's config or use a completion endpoint", engine.ErrInvalidInput, m.opts.Name)
	}
	if len(messages) == 0 {
		return "", fmt.Errorf("%w: no messages", engine.ErrInvalidInput)
	}
	msgs := make([]chattemplate.Message, len(messages))
	for i, msg := range messages {
		switch msg.Role {
		case "system", "user", "assistant", "tool", "developer", "function", "ipython":
		default:
			return "", fmt.Errorf("%w: message %d has role %q; want system, user, assistant, tool, developer, function or ipython", engine.ErrInvalidInput, i, msg.Role)
		}
		msgs[i] = chattemplate.Message{Role: msg.Role, Content: msg.Content}
	}
	out, err := m.chat.tmpl.Render(msgs, addGenerationPrompt)
	if err != nil {
		return "", fmt.Errorf("%w: model %q: %w", engine.ErrInvalidInput, m.opts.Name, err)
	}
	return out, nil
}
