package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// e2eDir holds the browser tests and their npm lock file.
const e2eDir = "api/ui/testdata/e2e"

// requireBrowser skips, or under CI=true fails, when headless Chromium,
// Node.js or playwright-core are missing (`.ci/run` installs Chromium;
// `make test` runs npm ci in e2eDir).
func requireBrowser(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing = append(missing, "/usr/bin/chromium (apt-get install chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci --prefix daemon/"+e2eDir+")")
	}
	if len(missing) == 0 {
		return
	}
	msg := "browser tests need " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestBrowser drives the chat and status pages in headless Chromium
// (testdata/e2e/run.mjs says what each step checks) against two real
// daemons: one open, whose config the script edits, and one that needs
// an API key. With UPDATE_SCREENSHOTS=1 the screenshots replace the
// README's.
func TestBrowser(t *testing.T) {
	requireBinary(t)
	requireBrowser(t)
	llama, err := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openPort, authPort := freePort(t), freePort(t)
	model := fmt.Sprintf("models: %q: {kind: \"causal-lm\", path: %q, context_length: 8192}\n", "tiny-llama", llama)
	openCfg := filepath.Join(dir, "config.cue")
	base := fmt.Sprintf("listeners: [{address: \"127.0.0.1\", port: %d}]\n", openPort) + model
	writeConfig(t, openCfg, base)
	good := base + "server: request_timeout: \"45s\"\n"
	bad := good + "server: {\n"

	out, err := exec.Command(binary, "keygen", "-name", "browser").Output()
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	key, snippet, _ := strings.Cut(string(out), "\n")
	out, err = exec.Command(binary, "keygen", "-name", "ops").Output()
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	adminKey, adminSnippet, _ := strings.Cut(string(out), "\n")
	authCfg := filepath.Join(dir, "auth.cue")
	writeConfig(t, authCfg, fmt.Sprintf("listeners: [{address: \"127.0.0.1\", port: %d}]\n", authPort)+model+snippet+adminSnippet+
		"auth: api_keys: ops: scopes: [\"admin\"]\n")

	open := start(t, openCfg)
	auth := start(t, authCfg)
	for _, c := range []struct {
		p    *proc
		port int
	}{{open, openPort}, {auth, authPort}} {
		url := fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", c.port)
		c.p.until("ready", func() bool { code, _, err := c.p.get(url); return err == nil && code == 200 })
	}

	shots := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots, _ = filepath.Abs(filepath.Join("..", "docs", "screenshots"))
		os.MkdirAll(shots, 0o755)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "run.mjs")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("OPEN_URL=http://127.0.0.1:%d", openPort),
		fmt.Sprintf("AUTH_URL=http://127.0.0.1:%d", authPort),
		"GOOD_KEY="+key, "ADMIN_KEY="+adminKey, "CONFIG_PATH="+openCfg, "GOOD_CONFIG="+good, "BAD_CONFIG="+bad, "SHOTS="+shots)
	got, err := cmd.CombinedOutput()
	t.Logf("browser tests:\n%s", got)
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
	for _, name := range []string{"chat.png", "status.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s was not taken", name)
		}
	}
	if strings.Contains(auth.log.String(), key) || strings.Contains(open.log.String(), key) || strings.Contains(auth.log.String(), adminKey) {
		t.Error("the API key reached a log")
	}
}
