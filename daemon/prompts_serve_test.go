package daemon_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPromptLogging serves a text model and reads the access log line of
// a generation whose prompt holds an e-mail address: by default it has no
// prompt or response; with logging.log_prompts they are there, capped at
// prompt_max_bytes and redacted; with logging.encrypt_prompts they are
// sealed, and `aiassistd decrypt` opens them with the secrets key.
func TestPromptLogging(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	llama, _ := filepath.Abs(filepath.Join("..", "examples", "models", "tiny-llama"))
	keyFile := filepath.Join(dir, "master.key")
	if out, err := exec.Command(binary, "keygen", "-master-key", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v: %s", err, out)
	}
	cfg := filepath.Join(dir, "config.cue")
	render := func(logging string) string {
		return fmt.Sprintf("listeners: [{port: %d}]\nreload: watch: false\nsecrets: key_file: %q\nlogging: {%s}\nmodels: llama: {kind: \"causal-lm\", path: %q}\n", port, keyFile, logging, llama)
	}
	writeConfig(t, cfg, render(""))
	p := start(t, cfg)
	gen := 1.0
	p.until("generation 1", func() bool { return p.metrics(port)["aiassist_config_generation"] == gen })

	const prompt = "Write to ivy@example.com about the plan for tomorrow"
	// generate asks for a completion and returns its access log line.
	generate := func(id string) map[string]any {
		t.Helper()
		body := fmt.Sprintf(`{"model":"llama","prompt":%q,"max_tokens":8,"temperature":0}`, prompt)
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/completions", port), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", id)
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("completion: %d", resp.StatusCode)
		}
		var line map[string]any
		p.until("the access line of "+id, func() bool {
			sc := bufio.NewScanner(strings.NewReader(p.log.String()))
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"request_id":"`+id+`"`) {
					return json.Unmarshal(sc.Bytes(), &line) == nil
				}
			}
			return false
		})
		return line
	}
	reload := func(logging string) {
		t.Helper()
		writeConfig(t, cfg, render(logging))
		p.signal(syscall.SIGHUP)
		gen++
		p.until(fmt.Sprintf("generation %v", gen), func() bool { return p.metrics(port)["aiassist_config_generation"] == gen })
	}

	line := generate("default")
	for _, k := range []string{"prompt", "response", "prompt_enc", "response_enc"} {
		if _, ok := line[k]; ok {
			t.Errorf("by default the line has %s: %v", k, line)
		}
	}
	if strings.Contains(p.log.String(), "ivy@") {
		t.Error("by default the prompt is in the log")
	}

	reload("log_prompts: true, prompt_max_bytes: 32")
	line = generate("redacted")
	if got, want := line["prompt"], "Write to [redacted] about t…"; got != want {
		t.Errorf("prompt %q, want %q", got, want)
	}
	if line["prompt_truncated"] != true {
		t.Errorf("prompt_truncated %v", line["prompt_truncated"])
	}
	if _, ok := line["response"].(string); !ok {
		t.Errorf("no response: %v", line)
	}
	if strings.Contains(p.log.String(), "ivy@") {
		t.Error("the address is in the log")
	}

	reload("log_prompts: true, encrypt_prompts: true")
	line = generate("sealed")
	sealed, _ := line["prompt_enc"].(string)
	if !strings.HasPrefix(sealed, "enc:v1:") || line["prompt"] != nil || strings.Contains(p.log.String(), "ivy@") {
		t.Fatalf("sealed line: %v", line)
	}
	raw, _ := json.Marshal(line)
	cmd := exec.Command(binary, "decrypt", "-key", keyFile)
	cmd.Stdin = bytes.NewReader(append(raw, '\n'))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	var opened map[string]any
	if err := json.Unmarshal(out, &opened); err != nil {
		t.Fatalf("decrypt printed %s", out)
	}
	if opened["prompt"] != prompt {
		t.Errorf("decrypted prompt %q, want %q", opened["prompt"], prompt)
	}
	if _, ok := opened["response"].(string); !ok || opened["response_enc"] != nil {
		t.Errorf("decrypted response: %v", opened)
	}
}

// TestCheckEncryptPrompts: aiassistd check refuses encrypt_prompts with a
// secrets key it cannot read, at the setting.
func TestCheckEncryptPrompts(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.cue")
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	writeConfig(t, cfg, "logging: {log_prompts: true, encrypt_prompts: true}\nsecrets: key_file: \"missing.key\"\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n")
	out, err := exec.Command(binary, "check", "-config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "config.cue:1:47: logging.encrypt_prompts: cannot read the secrets key (secrets.key_file) that seals the logged prompts: cannot open secret key file") {
		t.Errorf("check: %v\n%s", err, out)
	}
}
