package observe

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// logLine logs e through a JSON handler, as the daemon does, and returns
// the line decoded, with its keys in order.
func logLine(t *testing.T, e Entry) (map[string]any, []string) {
	t.Helper()
	var buf bytes.Buffer
	AccessLog{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}.Log(e)
	line := buf.Bytes()
	if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("not one line: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.Token()
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	return m, keys
}

// fullEntry sets every field of an Entry.
func fullEntry() Entry {
	return Entry{
		RequestID: "abc-1", Method: "POST", Path: "/v1/generate", Route: "/v1/generate", Model: "qwen",
		Status: 503, Reason: "queue_full", Duration: 1500 * time.Millisecond, Remote: "10.0.0.1",
		ClientIP: "203.0.113.7", Auth: "key", Principal: "team-a", Key: "team-a-2026", KeyID: "ak_1234",
		Issuer: "https://id.example.com", QueueWait: 250 * time.Millisecond, BytesIn: 42, BytesOut: 99,
		TokensIn: 12, TokensOut: 30, Extra: []slog.Attr{slog.String("finish_reason", "length")},
	}
}

// TestAccessLogFields: a line carries every field the issue lists (time,
// level, request id, principal, client IP, route, model, status,
// duration, queue wait, tokens in/out, error reason) under its key, in a
// fixed order, with the route's own fields last.
func TestAccessLogFields(t *testing.T) {
	m, keys := logLine(t, fullEntry())
	want := map[string]any{
		"level": "WARN", "msg": "request", "request_id": "abc-1", "method": "POST", "path": "/v1/generate",
		"route": "/v1/generate", "model": "qwen", "status": 503.0, "duration_seconds": 1.5,
		"queue_wait_seconds": 0.25, "remote_addr": "10.0.0.1", "client_ip": "203.0.113.7", "auth": "key",
		"principal": "team-a", "key": "team-a-2026", "key_id": "ak_1234", "issuer": "https://id.example.com",
		"bytes_in": 42.0, "bytes_out": 99.0, "tokens_in": 12.0, "tokens_out": 30.0, "error": "queue_full",
		"finish_reason": "length",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
	if len(m) != len(want)+1 {
		t.Errorf("line has keys %q, want those of %v and time", keys, want)
	}
	order := []string{"time", "level", "msg", "request_id", "method", "path", "route", "model", "status",
		"duration_seconds", "queue_wait_seconds", "remote_addr", "client_ip", "auth", "principal", "key", "key_id",
		"issuer", "bytes_in", "bytes_out", "tokens_in", "tokens_out", "error", "finish_reason"}
	if !reflect.DeepEqual(keys, order) {
		t.Errorf("keys in order\n got %q\nwant %q", keys, order)
	}
}

// TestAccessLogOmits: fields that say nothing when zero are left out; the
// others are always there.
func TestAccessLogOmits(t *testing.T) {
	m, keys := logLine(t, Entry{RequestID: "x", Method: "GET", Path: "/v2/health/live", Route: "/v2/health/live", Status: 200, Remote: "127.0.0.1"})
	want := []string{"time", "level", "msg", "request_id", "method", "path", "route", "model", "status", "duration_seconds", "remote_addr", "bytes_in", "bytes_out"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys\n got %q\nwant %q", keys, want)
	}
	if m["level"] != "INFO" {
		t.Errorf("level %v, want INFO for a 200", m["level"])
	}
	// Tokens go together: a generation that made none still says so.
	m, _ = logLine(t, Entry{TokensIn: 5})
	if m["tokens_in"] != 5.0 || m["tokens_out"] != 0.0 {
		t.Errorf("tokens_in %v tokens_out %v, want 5 and 0", m["tokens_in"], m["tokens_out"])
	}
}

// TestAccessLogPromptsLast: the prompt fields of Prompts.Attrs, passed in
// Extra, end the line, and a secret-free principal is all there is of the
// credential.
func TestAccessLogPromptsLast(t *testing.T) {
	p, err := NewPrompts(PromptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := fullEntry()
	e.Extra = append(e.Extra, p.Attrs("hi", "hello")...)
	m, keys := logLine(t, e)
	if got := keys[len(keys)-2:]; !reflect.DeepEqual(got, []string{"prompt", "response"}) {
		t.Errorf("last keys %q", got)
	}
	if m["prompt"] != "hi" || m["response"] != "hello" {
		t.Errorf("prompt %v response %v", m["prompt"], m["response"])
	}
	if strings.Contains(strings.Join(keys, " "), "secret") {
		t.Errorf("a key names a secret: %q", keys)
	}
}
