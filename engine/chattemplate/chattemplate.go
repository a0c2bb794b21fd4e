// Package chattemplate renders a model's chat template — the Jinja
// template in tokenizer_config.json's chat_template — the way Hugging Face
// transformers, vLLM and TGI do: with the variables messages,
// add_generation_prompt, bos_token and eos_token, and raise_exception for
// the template to refuse a conversation.
//
// The Jinja engine is github.com/ardanlabs/jinja, which is written for LLM
// chat templates (Python string methods, namespace, loop controls, tojson)
// and has no dependencies.
package chattemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// ErrRender marks an error the template raised or hit while rendering a
// conversation, as opposed to one in the template itself: the caller sent
// something the template does not accept.
var ErrRender = errors.New("chat template refused the conversation")

// Message is one turn of a conversation.
type Message struct {
	Role    string
	Content string
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	tmpl     *jinja.Template
	bos, eos string
}

// Parse compiles src; bos and eos are the values of bos_token and
// eos_token.
func Parse(src, bos, eos string) (_ *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid chat template: %v", r)
		}
	}()
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid chat template: %w", err)
	}
	return &Template{tmpl: t, bos: bos, eos: eos}, nil
}

// Render renders messages. An error the template raises wraps ErrRender.
func (t *Template) Render(messages []Message, addGenerationPrompt bool) (_ string, err error) {
	// The template comes from the model's files and the messages from a
	// client: a bug the two trigger in the engine must not take the
	// server down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrRender, r)
		}
	}()
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	out, err := t.tmpl.Render(map[string]any{
		"messages":              msgs,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.bos,
		"eos_token":             t.eos,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRender, err)
	}
	return out, nil
}

// Config is what a chat needs from tokenizer_config.json.
type Config struct {
	// Template is the chat template, "" if the file has none. A file with
	// several named templates gives the one named "default".
	Template string
	BOSToken string
	EOSToken string
}

// ParseTokenizerConfig reads tokenizer_config.json. Special tokens may be
// written as strings or as added-token objects with a "content" field; the
// chat template as a string or as a list of {name, template}.
func ParseTokenizerConfig(data []byte) (Config, error) {
	var f struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return Config{}, fmt.Errorf("invalid tokenizer_config.json: %w", err)
	}
	var c Config
	var err error
	if c.BOSToken, err = tokenString(f.BOS); err != nil {
		return Config{}, fmt.Errorf("tokenizer_config.json bos_token: %w", err)
	}
	if c.EOSToken, err = tokenString(f.EOS); err != nil {
		return Config{}, fmt.Errorf("tokenizer_config.json eos_token: %w", err)
	}
	if len(f.ChatTemplate) == 0 || string(f.ChatTemplate) == "null" {
		return c, nil
	}
	if err := json.Unmarshal(f.ChatTemplate, &c.Template); err == nil {
		return c, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(f.ChatTemplate, &named); err != nil {
		return Config{}, errors.New("tokenizer_config.json chat_template is neither a string nor a list of {name, template}")
	}
	var names []string
	for _, n := range named {
		if n.Name == "default" {
			c.Template = n.Template
			return c, nil
		}
		names = append(names, n.Name)
	}
	return Config{}, fmt.Errorf("tokenizer_config.json has chat templates %s but none named default", strings.Join(names, ", "))
}

func tokenString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", errors.New("want a string or an object with content")
	}
	return obj.Content, nil
}
