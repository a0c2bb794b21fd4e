package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiassist/aiassist/daemon/secret"
	"github.com/aiassist/aiassist/schema"
)

func promptsConfig(t *testing.T, src string) *schema.Config {
	t.Helper()
	cfg, err := schema.Parse(filepath.Join(t.TempDir(), "config.cue"), []byte("models: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBuildPrompts: by default no prompt is logged; log_prompts logs them
// redacted with the default patterns; encrypt_prompts seals them with
// the secrets key, and a key that cannot be read fails the load.
func TestBuildPrompts(t *testing.T) {
	for _, src := range []string{"", "logging: {log_prompts: true, access_log: false}\n"} {
		p, err := buildPrompts(promptsConfig(t, src))
		if err != nil || p != nil {
			t.Errorf("%q: Prompts %v, %v; want none", src, p, err)
		}
	}

	p, err := buildPrompts(promptsConfig(t, "logging: {log_prompts: true, prompt_max_bytes: 32}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Attrs("mail gina@example.com, then write a very long story", "call +86 138 0013 8000, pay 4111-1111-1111-1111")
	if len(got) != 3 || got[0].Key != "prompt" || got[0].Value.String() != "mail [redacted], then writ…" ||
		got[2].Key != "response" || got[2].Value.String() != "call [redacted], pay [redacted]" {
		t.Errorf("attrs %v", got)
	}

	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := secret.WriteKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	p, err = buildPrompts(promptsConfig(t, "logging: {log_prompts: true, encrypt_prompts: true}\nsecrets: key_file: \""+keyFile+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got = p.Attrs("gina@example.com", "ok")
	key, err := secret.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Key != "prompt_enc" {
		t.Fatalf("attrs %v", got)
	}
	if b, err := secret.Decrypt(key, got[0].Value.String()); err != nil || string(b) != "gina@example.com" {
		t.Errorf("prompt_enc opens to %q, %v", b, err)
	}

	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = buildPrompts(promptsConfig(t, "logging: {log_prompts: true, encrypt_prompts: true}\nsecrets: key_file: \""+keyFile+"\"\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "logging.encrypt_prompts: cannot read the secrets key (secrets.key_file) that seals the logged prompts: ") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key others may read: %v", err)
	}
}
