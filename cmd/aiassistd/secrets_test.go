package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/aiassist/aiassist/daemon/gate"
	"github.com/aiassist/aiassist/daemon/secret"
	"github.com/aiassist/aiassist/schema"
)

// TestKeygenSnippetAppends: keygen's first line is the key alone, and the
// rest, appended to a config as it is (one that has keys already), adds
// the key by CUE unification; the file holds only its hash.
func TestKeygenSnippetAppends(t *testing.T) {
	dir := t.TempDir()
	demo, _ := os.ReadFile(filepath.Join("..", "..", "examples", "models", "demo-mlp", "model.onnx"))
	os.WriteFile(filepath.Join(dir, "demo.onnx"), demo, 0o644)
	cfg := filepath.Join(dir, "config.cue")
	first := gate.NewKey()
	base := "models: demo: {kind: \"tensor\", path: \"demo.onnx\"}\nauth: api_keys: \"first\": {hash: \"" + gate.HashKey(first) + "\"}\n"
	if err := os.WriteFile(cfg, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var out, errOut bytes.Buffer
	if code := keygen([]string{"-name", "team-a-2026q4", "-days", "90", "-models", "demo"}, &out, &errOut, now); code != 0 {
		t.Fatalf("keygen = %d: %s", code, errOut.String())
	}
	key, snippet, _ := strings.Cut(out.String(), "\n")
	if _, ok := gate.KeyID(key); !ok || strings.ContainsAny(key, " \t") {
		t.Fatalf("first line %q is not a key alone", key)
	}
	if strings.Contains(snippet, key) || strings.Contains(snippet, key[strings.LastIndexByte(key, '_')+1:]) {
		t.Error("the snippet holds the key's secret")
	}
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(snippet)
	f.Close()
	c, err := schema.Load(cfg)
	if err != nil {
		t.Fatalf("the config with the snippet appended: %v\n%s", err, snippet)
	}
	k, ok := c.Auth.APIKeys["team-a-2026q4"]
	if !ok || len(c.Auth.APIKeys) != 2 {
		t.Fatalf("keys after the append: %v", c.Auth.APIKeys)
	}
	if k.Hash != gate.HashKey(key) || !k.Created.Equal(now) || !k.NotAfter.Equal(now.AddDate(0, 0, 90)) || len(k.Models) != 1 || k.Models[0] != "demo" {
		t.Errorf("the appended key: %+v", k)
	}
	if code, _, errOut := runCmd("check", "-config", cfg); code != 0 {
		t.Errorf("check after the append: %s", errOut)
	}
	// A bad name is refused before a key is made.
	out.Reset()
	if code := keygen([]string{"-name", "a b"}, &out, &errOut, now); code != 2 || out.Len() != 0 {
		t.Errorf("keygen -name 'a b' = %d, printed %q", code, out.String())
	}
}

// TestMasterKeyEncryptToken: keygen -master-key writes a 0600 key that
// encrypt seals with; a config holding the sealed JWT secret mints a
// token, which that secret verifies.
func TestMasterKeyEncryptToken(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	var out, errOut bytes.Buffer
	if code := keygen([]string{"-master-key", keyFile}, &out, &errOut, time.Now()); code != 0 {
		t.Fatalf("keygen -master-key = %d: %s", code, errOut.String())
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	if code := keygen([]string{"-master-key", keyFile}, &out, &errOut, time.Now()); code == 0 {
		t.Error("keygen -master-key overwrote a key file")
	}
	const hs = "a-test-hs256-secret-that-is-long-enough-to-use"
	out.Reset()
	if code := encrypt([]string{"-key", keyFile}, strings.NewReader(hs+"\n"), &out, &errOut); code != 0 {
		t.Fatalf("encrypt = %d: %s", code, errOut.String())
	}
	sealed := strings.TrimSpace(out.String())
	if !secret.IsEncrypted(sealed) || strings.Contains(sealed, hs) {
		t.Fatalf("encrypt printed %q", sealed)
	}
	key, err := secret.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := secret.Decrypt(key, sealed); err != nil || string(plain) != hs {
		t.Fatalf("decrypt: %q %v", plain, err)
	}
	demo, _ := os.ReadFile(filepath.Join("..", "..", "examples", "models", "demo-mlp", "model.onnx"))
	os.WriteFile(filepath.Join(dir, "demo.onnx"), demo, 0o644)
	cfg := filepath.Join(dir, "config.cue")
	os.WriteFile(cfg, []byte(`models: demo: {kind: "tensor", path: "demo.onnx"}
secrets: key_file: "master.key"
auth: jwt: {hs256_secret: "`+sealed+`", issuer: "https://id.example", audience: "aiassist"}
`), 0o644)
	out.Reset()
	if code := mintToken([]string{"-config", cfg, "-sub", "alice", "-ttl", "10m", "-models", "demo"}, &out, &errOut); code != 0 {
		t.Fatalf("token = %d: %s", code, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(hs), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("https://id.example"), jwt.WithAudience("aiassist"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("the minted token does not verify with the secret: %v", err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	if claims["sub"] != "alice" || !strings.Contains(fmt.Sprint(claims["scope"], claims["scp"]), "model:call") || fmt.Sprint(claims["models"]) != "[demo]" {
		t.Errorf("claims %v", claims)
	}
	if code, _, errOut := runCmd("check", "-config", cfg); code != 0 {
		t.Errorf("check of the config with the sealed secret: %s", errOut)
	}
	// A key file others can read is refused.
	os.Chmod(keyFile, 0o644)
	if code := encrypt([]string{"-key", keyFile}, strings.NewReader("x"), &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "chmod 600") {
		t.Errorf("encrypt with a world-readable key: %d %s", code, errOut.String())
	}
}
