package chattemplate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/engine/internal/testpaths"
)

func loadConfig(t *testing.T, path string) Config {
	t.Helper()
	data, err := os.ReadFile(testpaths.Need(t, path))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseTokenizerConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var conversation = []Message{
	{"system", "You are brief."},
	{"user", "Hello"},
	{"assistant", "Hi!"},
	{"user", "What is 2+2?"},
}

// TestRealTemplates renders the templates real models ship and compares
// with what Hugging Face transformers' apply_chat_template gives.
func TestRealTemplates(t *testing.T) {
	cases := []struct {
		name, path string
		gen        bool
		msgs       []Message
		want       string
	}{
		{
			"phi3", filepath.Join(testpaths.Shared(t), "models/tokenizers/phi3-tokenizer_config.json"), true, conversation,
			"<|system|>\nYou are brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi!<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n",
		},
		{
			// The template opens no assistant turn after an assistant message.
			"phi3 ending with assistant", filepath.Join(testpaths.Shared(t), "models/tokenizers/phi3-tokenizer_config.json"), true, conversation[:3],
			"<|system|>\nYou are brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi!<|end|>\n",
		},
		{
			"phi3 without generation prompt", filepath.Join(testpaths.Shared(t), "models/tokenizers/phi3-tokenizer_config.json"), false, conversation[1:2],
			"<|user|>\nHello<|end|>\n",
		},
		{
			"tiny-llama", filepath.Join(testpaths.RepoRoot(t), "examples/models/tiny-llama/tokenizer_config.json"), true, conversation,
			"<|system|>\nYou are brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi!<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n",
		},
		{
			"tiny-llama without generation prompt", filepath.Join(testpaths.RepoRoot(t), "examples/models/tiny-llama/tokenizer_config.json"), false, conversation[1:2],
			"<|user|>\nHello<|end|>\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := loadConfig(t, c.path)
			tmpl, err := Parse(cfg.Template, cfg.BOSToken, cfg.EOSToken)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(c.msgs, c.gen)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestLlamaStyle covers the forms Llama-2/Mistral-style templates use:
// bos_token, raise_exception, loop.index0, slicing and string methods.
func TestLlamaStyle(t *testing.T) {
	const src = "{{ bos_token }}{% for message in messages %}" +
		"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
		"{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'].strip() + ' [/INST]' }}" +
		"{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
	tmpl, err := Parse(src, "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render([]Message{{"user", " Hi "}, {"assistant", "Hello"}, {"user", "Bye"}}, true)
	if want := "<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]"; err != nil || got != want {
		t.Errorf("got %q %v, want %q", got, err, want)
	}
	_, err = tmpl.Render([]Message{{"assistant", "Hello"}}, true)
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "must alternate") {
		t.Errorf("raise_exception: %v", err)
	}
}

func TestParseTokenizerConfig(t *testing.T) {
	f := func(in string, want Config, wantErr string) {
		t.Helper()
		got, err := ParseTokenizerConfig([]byte(in))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%s: error %v, want %q", in, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s: got %+v %v, want %+v", in, got, err, want)
		}
	}
	f(`{}`, Config{}, "")
	f(`{"chat_template": "x", "bos_token": "<s>", "eos_token": {"content": "</s>", "special": true}}`, Config{"x", "<s>", "</s>"}, "")
	f(`{"chat_template": [{"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}]}`, Config{Template: "d"}, "")
	f(`{"chat_template": [{"name": "tool_use", "template": "t"}]}`, Config{}, "none named default")
	f(`{"chat_template": 3}`, Config{}, "neither a string")
	f(`{"bos_token": 3}`, Config{}, "bos_token")
	f(`{`, Config{}, "invalid")
}

func TestParseError(t *testing.T) {
	if _, err := Parse("{% for x in %}", "", ""); err == nil {
		t.Error("a broken template compiled")
	}
}

// FuzzRender compiles and renders arbitrary templates and conversations:
// errors are fine, panics are not.
func FuzzRender(f *testing.F) {
	f.Add("{% for m in messages %}<|{{ m.role }}|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}x{% endif %}", "user", "hi")
	f.Add("{{ raise_exception('no') }}", "user", "")
	f.Add("{{ messages[-1]['content'].strip() ~ eos_token }}", "assistant", " a ")
	f.Fuzz(func(t *testing.T, src, role, content string) {
		tmpl, err := Parse(src, "<s>", "</s>")
		if err != nil {
			return
		}
		tmpl.Render([]Message{{role, content}}, true)
	})
}

// FuzzParseTokenizerConfig checks the reader never panics.
func FuzzParseTokenizerConfig(f *testing.F) {
	f.Add([]byte(`{"chat_template": "x", "bos_token": {"content": "<s>"}}`))
	f.Add([]byte(`{"chat_template": [{"name": "default", "template": "d"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseTokenizerConfig(data)
	})
}
