package observe

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/yaml"

	"github.com/aiassist/aiassist/daemon/secret"
)

const elkDir = "../../examples/elk"

func readELK(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(elkDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(readELK(t, name)))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", name)
	}
	return m
}

// dig walks m along keys; nil when a key is missing.
func dig(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// TestELKFilesParse: every JSON file of examples/elk parses, the ILM
// policy deletes after 30 days, and the template points at it by the name
// the README creates it under.
func TestELKFilesParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(elkDir, "*.json"))
	if len(files) < 2 {
		t.Fatalf("found %q under %s, want the ILM policy and the index template", files, elkDir)
	}
	for _, f := range files {
		decodeJSON(t, filepath.Base(f))
	}
	ilm := decodeJSON(t, "ilm-policy.json")
	if got := dig(ilm, "policy", "phases", "delete", "min_age"); got != "30d" {
		t.Errorf("delete phase min_age = %v, want 30d", got)
	}
	if dig(ilm, "policy", "phases", "delete", "actions", "delete") == nil {
		t.Error("the delete phase does not delete")
	}
	tpl := decodeJSON(t, "index-template.json")
	name, _ := dig(tpl, "template", "settings", "index.lifecycle.name").(string)
	if name == "" || !strings.Contains(string(readELK(t, "README.md")), "_ilm/policy/"+name+" ") {
		t.Errorf("the template's policy %q is not the one the README creates", name)
	}
	if !slices.Contains(dig(tpl, "index_patterns").([]any), any("logs-aiassist-*")) || dig(tpl, "data_stream") == nil {
		t.Errorf("the template is not for the data stream logstash.conf writes: %v", dig(tpl, "index_patterns"))
	}
	conf := string(readELK(t, "logstash.conf"))
	for _, s := range []string{`data_stream_type => "logs"`, `data_stream_dataset => "aiassist"`} {
		if !strings.Contains(conf, s) {
			t.Errorf("logstash.conf does not write logs-aiassist-*: no %s", s)
		}
	}
}

// renames returns logstash.conf's renames of [ai_log] fields.
func renames(t *testing.T) map[string]string {
	t.Helper()
	conf := string(readELK(t, "logstash.conf"))
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Fatal("logstash.conf: unbalanced braces")
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`"\[ai_log\]\[([a-z_]+)\]" => "([a-z_]+)"`).FindAllStringSubmatch(conf, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestLogstashRenames: the pipeline does what the seed's filter does to
// the seed's field names, which the daemon writes, and moves the other
// prompt fields alongside.
func TestLogstashRenames(t *testing.T) {
	r := renames(t)
	want := map[string]string{
		PromptKey: "user_query", ResponseKey: "model_answer",
		PromptEncKey: "user_query_enc", ResponseEncKey: "model_answer_enc",
		PromptTruncatedKey: "user_query_truncated", ResponseTruncatedKey: "model_answer_truncated",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("logstash.conf renames [ai_log][%s] to %q, want %q", k, r[k], v)
		}
	}
	conf := string(readELK(t, "logstash.conf"))
	if !strings.Contains(conf, `source => "message"`) || !strings.Contains(conf, `target => "ai_log"`) {
		t.Error("logstash.conf does not decode a raw line into ai_log as the seed does")
	}
}

// TestIndexTemplateTypesEveryField: every key an access log line can
// carry, the prompt fields in each of their forms included, has a type in
// the index template where logstash.conf puts it, so none is left to
// Elasticsearch's guess.
func TestIndexTemplateTypesEveryField(t *testing.T) {
	key := bytes.Repeat([]byte{1}, secret.KeySize)
	s, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := NewPrompts(PromptOptions{MaxBytes: 16})
	sealed, _ := NewPrompts(PromptOptions{MaxBytes: 16, Sealer: s})
	long := strings.Repeat("x", 20)
	keys := map[string]bool{}
	for _, extra := range [][]slog.Attr{plain.Attrs(long, long), sealed.Attrs(long, long)} {
		e := fullEntry()
		e.Extra = extra
		m, _ := logLine(t, e)
		for k := range m {
			keys[k] = true
		}
	}
	// The /v1 routes' own fields (daemon/api/openai) and the encryption
	// failure fields.
	for _, k := range []string{"prompt_tokens", "completion_tokens", "finish_reason", "ttft_seconds", PromptEncKey + "_error", ResponseEncKey + "_error"} {
		keys[k] = true
	}

	props := dig(decodeJSON(t, "index-template.json"), "template", "mappings", "properties")
	r := renames(t)
	for k := range keys {
		var typ any
		if to, ok := r[k]; ok {
			typ = dig(props, to, "type")
		} else {
			typ = dig(props, "ai_log", "properties", k, "type")
		}
		if typ == nil {
			t.Errorf("field %s has no type in index-template.json", k)
		}
	}
	if dig(props, "@timestamp", "type") != "date" || dig(props, "ai_log", "properties", "time", "type") != "date" {
		t.Error("time fields are not dates")
	}
	for _, k := range []string{"user_query_enc", "model_answer_enc"} {
		if dig(props, k, "index") != false {
			t.Errorf("%s, a sealed value, is indexed", k)
		}
	}
}

// TestFilebeatInput: filebeat.yml reads the file logrotate.conf rotates
// and the README logs to, with the ndjson parser into ai_log, where
// logstash.conf looks.
func TestFilebeatInput(t *testing.T) {
	f, err := yaml.Extract("filebeat.yml", readELK(t, "filebeat.yml"))
	if err != nil {
		t.Fatal(err)
	}
	v := cuecontext.New().BuildFile(f)
	var cfg map[string]any
	if err := v.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	inputs, _ := cfg["filebeat.inputs"].([]any)
	if len(inputs) != 1 {
		t.Fatalf("filebeat.inputs = %v", cfg["filebeat.inputs"])
	}
	in := inputs[0]
	if dig(in, "type") != "filestream" || dig(in, "id") == nil {
		t.Errorf("input %v is not a filestream with an id", in)
	}
	parsers, _ := dig(in, "parsers").([]any)
	if len(parsers) != 1 || dig(parsers[0], "ndjson", "target") != "ai_log" {
		t.Errorf("parsers %v: want one ndjson parser with target ai_log", parsers)
	}
	paths, _ := dig(in, "paths").([]any)
	if len(paths) != 1 {
		t.Fatalf("paths %v", paths)
	}
	path := paths[0].(string)
	if !strings.Contains(string(readELK(t, "logrotate.conf")), "\n"+path+" {") {
		t.Errorf("logrotate.conf does not rotate %s", path)
	}
	if !strings.Contains(string(readELK(t, "README.md")), `file:        "`+path+`"`) {
		t.Errorf("the README does not log to %s", path)
	}
	if hosts := dig(cfg, "output.logstash", "hosts"); hosts == nil || !strings.Contains(string(readELK(t, "logstash.conf")), "port => 5044") {
		t.Errorf("filebeat's output %v does not reach logstash.conf's beats input", hosts)
	}
}
