package daemon

import (
	"testing"
	"time"

	"github.com/aiassist/aiassist/schema"
)

// TestCacheIdentity: a model's identity follows its files and the settings
// that change its answers, not those that say how much runs at once, and
// turning its cache off does not reload it.
func TestCacheIdentity(t *testing.T) {
	cfg := &schema.Config{}
	spec := schema.Model{Name: "m", Kind: schema.KindCausalLM, Path: "/m", Instances: 1, MaxSequences: 8, MaxQueue: 64, Truncate: "error"}
	file := fileID{dev: 1, ino: 2, size: 3, mtime: time.Unix(4, 0)}
	id := func(spec schema.Model, file fileID) string {
		return modelIdentity(&loadedModel{spec: spec, file: file}, cfg)
	}
	base := id(spec, file)
	same := spec
	same.Instances, same.MaxSequences, same.MaxQueue, same.RequestTimeout, same.NoCache = 4, 16, 8, time.Minute, true
	if id(same, file) != base {
		t.Error("instances, max_sequences, max_queue, request_timeout or cache changed the identity")
	}
	for name, change := range map[string]func(*schema.Model, *fileID){
		"path":           func(m *schema.Model, _ *fileID) { m.Path = "/n" },
		"context_length": func(m *schema.Model, _ *fileID) { m.ContextLength = 100 },
		"truncate":       func(m *schema.Model, _ *fileID) { m.Truncate = "left" },
		"chat_template":  func(m *schema.Model, _ *fileID) { m.ChatTemplate = "x" },
		"threads":        func(m *schema.Model, _ *fileID) { m.IntraOpThreads = 2 },
		"inode":          func(_ *schema.Model, f *fileID) { f.ino = 5 },
		"size":           func(_ *schema.Model, f *fileID) { f.size = 5 },
		"mtime":          func(_ *schema.Model, f *fileID) { f.mtime = f.mtime.Add(time.Nanosecond) },
	} {
		m, f := spec, file
		change(&m, &f)
		if id(m, f) == base {
			t.Errorf("a change of %s kept the identity", name)
		}
	}
	off := spec
	off.NoCache = true
	if !sameModel(&loadedModel{spec: spec, file: file}, off, file, cfg, cfg) {
		t.Error("cache: false reloads the model")
	}
}
