package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiassist/aiassist/daemon/observe"
	"github.com/aiassist/aiassist/daemon/secret"
)

// sealedLog writes access log lines the way the daemon does with
// logging.encrypt_prompts, sealed with the key in keyFile, in the given
// format ("json" or "text").
func sealedLog(t *testing.T, keyFile, format string, max int, texts ...[2]string) []byte {
	t.Helper()
	key, err := secret.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := observe.NewPrompts(observe.PromptOptions{MaxBytes: max, Redact: []string{`@`}, Sealer: s})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h := slog.Handler(slog.NewJSONHandler(&buf, nil))
	if format == "text" {
		h = slog.NewTextHandler(&buf, nil)
	}
	log := observe.AccessLog{Logger: slog.New(h)}
	for i, tx := range texts {
		log.Log(observe.Entry{
			RequestID: "req-" + string(rune('a'+i)), Method: "POST", Path: "/v1/chat/completions", Route: "/v1/chat/completions",
			Model: "qwen", Status: 200, Duration: time.Second, Auth: "key", Principal: "team-a", KeyID: "ak_1",
			TokensIn: 3, TokensOut: 4, Extra: p.Attrs(tx[0], tx[1]),
		})
	}
	return buf.Bytes()
}

func newKeyFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "master.key")
	if err := secret.WriteKeyFile(f); err != nil {
		t.Fatal(err)
	}
	return f
}

func runDecrypt(in []byte, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = decrypt(args, bytes.NewReader(in), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDecryptAccessLog: lines sealed with encrypt_prompts come out with
// prompt and response in the clear, where prompt_enc and response_enc
// were, everything else of the line as it was, and the text capped as
// logged but not redacted.
func TestDecryptAccessLog(t *testing.T) {
	keyFile := newKeyFile(t)
	in := sealedLog(t, keyFile, "json", 64,
		[2]string{"my mail is henry@example.com <b>&</b>", "你好，Henry"},
		[2]string{strings.Repeat("long ", 20), "ok"},
	)
	if bytes.Contains(in, []byte("henry")) || bytes.Contains(in, []byte("你好")) {
		t.Fatalf("the sealed log holds the text: %s", in)
	}
	code, out, errOut := runDecrypt(in, "-key", keyFile)
	if code != 0 || errOut != "" {
		t.Fatalf("decrypt = %d: %s", code, errOut)
	}
	inLines, outLines := strings.Split(strings.TrimSpace(string(in)), "\n"), strings.Split(strings.TrimSpace(out), "\n")
	if len(outLines) != len(inLines) {
		t.Fatalf("%d lines in, %d out:\n%s", len(inLines), len(outLines), out)
	}
	type line struct {
		RequestID   string `json:"request_id"`
		Prompt      *string
		Response    *string
		PromptEnc   *string `json:"prompt_enc"`
		ResponseEnc *string `json:"response_enc"`
		Truncated   bool    `json:"prompt_truncated"`
	}
	want := []struct{ prompt, response string }{
		{"my mail is henry@example.com <b>&</b>", "你好，Henry"},
		{strings.Repeat("long ", 20)[:64] + "…", "ok"},
	}
	for i, l := range outLines {
		var got line
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, l)
		}
		if got.Prompt == nil || *got.Prompt != want[i].prompt || got.Response == nil || *got.Response != want[i].response {
			t.Errorf("line %d: %s\nwant prompt %q response %q", i+1, l, want[i].prompt, want[i].response)
		}
		if got.PromptEnc != nil || got.ResponseEnc != nil {
			t.Errorf("line %d keeps a sealed field: %s", i+1, l)
		}
		if got.Truncated != (i == 1) {
			t.Errorf("line %d: prompt_truncated %v", i+1, got.Truncated)
		}
		// The rest of the line is byte for byte the daemon's, and the
		// opened fields sit where the sealed ones were.
		head := inLines[i][:strings.Index(inLines[i], `"prompt_enc"`)]
		if !strings.HasPrefix(l, head+`"prompt":`) {
			t.Errorf("line %d: the fields before the prompt changed:\n in %s\nout %s", i+1, inLines[i], l)
		}
	}
	if !strings.Contains(outLines[0], `<b>&</b>`) {
		t.Errorf("HTML characters escaped: %s", outLines[0])
	}
}

// TestDecryptShapes: sealed fields are opened in Logstash's shape
// (renamed user_query_enc, and inside ai_log) and in the text format;
// other lines pass through unchanged.
func TestDecryptShapes(t *testing.T) {
	keyFile := newKeyFile(t)
	key, _ := secret.LoadKeyFile(keyFile)
	seal := func(s string) string {
		v, err := secret.Encrypt(key, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	event := map[string]any{
		"@timestamp":       "2026-03-01T00:00:00Z",
		"user_query_enc":   seal("question"),
		"model_answer_enc": seal("answer"),
		"ai_log":           map[string]any{"request_id": "r1", "prompt_enc": seal("inner")},
	}
	ev, _ := json.Marshal(event)
	text := sealedLog(t, keyFile, "text", 4096, [2]string{"text prompt = \"quoted\"", "text answer"})
	plain := "time=2026-03-01 level=INFO msg=\"started\"\n{\"not\": json\n{\"msg\":\"no sealed field\", \"x\": \"enc:v1:AAAA\"}\n"
	in := append(append(append(ev, '\n'), text...), plain...)
	code, out, errOut := runDecrypt(in, "-key", keyFile)
	if code != 0 {
		t.Fatalf("decrypt = %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got["user_query"] != "question" || got["model_answer"] != "answer" || got["ai_log"].(map[string]any)["prompt"] != "inner" {
		t.Errorf("Logstash event opened to %s", lines[0])
	}
	if !strings.Contains(lines[1], `prompt="text prompt = \"quoted\""`) || !strings.Contains(lines[1], `response="text answer"`) || strings.Contains(lines[1], "_enc=") {
		t.Errorf("text line opened to %s", lines[1])
	}
	if rest := strings.Join(lines[2:], "\n"); rest != plain {
		t.Errorf("other lines changed:\n got %q\nwant %q", rest, plain)
	}
}

// TestDecryptFailures: a line sealed with another key, or changed, is
// printed as it is and reported by line and field, and the status is 1;
// a key others may read is refused; so is a line past the bound.
func TestDecryptFailures(t *testing.T) {
	keyFile, other := newKeyFile(t), newKeyFile(t)
	in := sealedLog(t, other, "json", 4096, [2]string{"for another key", "x"})
	code, out, errOut := runDecrypt(in, "-key", keyFile)
	if code != 1 || out != string(in) {
		t.Errorf("another key: %d, out %q", code, out)
	}
	if !strings.Contains(errOut, "line 1: prompt_enc: cannot decrypt") || !strings.Contains(errOut, "line 1: response_enc: cannot decrypt") {
		t.Errorf("another key: stderr %q", errOut)
	}
	good := sealedLog(t, keyFile, "json", 4096, [2]string{"fine", "fine"})
	i := bytes.Index(good, []byte(`"prompt_enc":"enc:v1:`)) + len(`"prompt_enc":"enc:v1:`) + 4
	bad := bytes.Clone(good)
	bad[i] ^= 1
	if code, _, errOut := runDecrypt(bad, "-key", keyFile); code != 1 || !strings.Contains(errOut, "line 1: prompt_enc: cannot decrypt") || strings.Contains(errOut, "response_enc") {
		t.Errorf("a changed value: %d %q", code, errOut)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runDecrypt(good, "-key", keyFile); code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("a key others may read: %d %q", code, errOut)
	}
	if code, _, errOut := runDecrypt(bytes.Repeat([]byte("x"), maxLogLine+1), "-key", other); code != 1 || !strings.Contains(errOut, "longer than 16 MiB") {
		t.Errorf("an endless line: %d %q", code, errOut)
	}
	if code, _, errOut := runDecrypt(nil, "-key", other, "extra"); code != 2 || !strings.Contains(errOut, "stdin") {
		t.Errorf("an argument: %d %q", code, errOut)
	}
}

// TestDecryptBinary runs the built binary on a sealed log on its stdin,
// as an operator does: aiassistd decrypt -key KEY < aiassist.log.
func TestDecryptBinary(t *testing.T) {
	keyFile := newKeyFile(t)
	in := sealedLog(t, keyFile, "json", 4096, [2]string{"what is 2+2?", "4"})
	cmd := exec.Command(binary(t), "decrypt", "-key", keyFile)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if !bytes.Contains(out, []byte(`"prompt":"what is 2+2?"`)) || !bytes.Contains(out, []byte(`"response":"4"`)) {
		t.Errorf("decrypt printed %s", out)
	}
}

// FuzzOpenLine: any line comes back unchanged unless it holds a sealed
// value, a JSON line stays JSON, and nothing panics.
func FuzzOpenLine(f *testing.F) {
	key := bytes.Repeat([]byte{7}, secret.KeySize)
	s, err := secret.NewSealer(key)
	if err != nil {
		f.Fatal(err)
	}
	v, _ := s.Encrypt([]byte("hello \"world\"\n"))
	f.Add(`{"msg":"request","prompt_enc":"` + v + `","n":1}`)
	f.Add(`{"ai_log":{"prompt_enc":"` + v + `"},"user_query_enc":"enc:v1:AAAA"}`)
	f.Add(`time=x level=INFO prompt_enc="` + v + `" response_enc=enc:v1:AA`)
	f.Add(`{"a": {"b": {"c": {"d": {"e": {"prompt_enc": "` + v + `"}}}}}}`)
	f.Add(`{"_enc":"enc:v1:"} trailing`)
	f.Fuzz(func(t *testing.T, line string) {
		out, _ := openLine(s, []byte(line))
		if !strings.Contains(line, secret.Prefix) && string(out) != line {
			t.Fatalf("%q changed to %q", line, out)
		}
		if json.Valid([]byte(line)) && !json.Valid(out) {
			t.Fatalf("%q became invalid JSON %q", line, out)
		}
	})
}
