package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadAppliesEverySetting changes, one reload each, the settings
// that used to be ignored until a restart — logging.format and
// reload.watch — and one that needs a restart, runtime.library, which the
// reload must refuse by name instead of ignoring.
func TestReloadAppliesEverySetting(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	render := func(format string, watch bool, extra string) string {
		return fmt.Sprintf("listeners: [{port: %d}]\nlogging: format: %q\nreload: watch: %v\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n%s", port, format, watch, extra)
	}
	writeConfig(t, cfg, render("json", false, ""))
	p := start(t, cfg)
	gen := func(n float64) func() bool {
		return func() bool { return p.metrics(port)["aiassist_config_generation"] == n }
	}
	p.until("generation 1", gen(1))

	// logging.format: text from the next line on.
	writeConfig(t, cfg, render("text", false, ""))
	p.signal(syscall.SIGHUP)
	p.until("generation 2", gen(2))
	p.until("a text log line", func() bool { return strings.Contains(p.log.String(), "level=INFO msg=reloaded") })

	// reload.watch on: saving the file now reloads without a signal.
	writeConfig(t, cfg, render("text", true, ""))
	p.signal(syscall.SIGHUP)
	p.until("generation 3", gen(3))
	writeConfig(t, cfg, render("text", true, "server: request_timeout: \"31s\"\n"))
	p.until("generation 4 from the file watch", gen(4))

	// reload.watch off: the watch stops, so a saved file waits for SIGHUP.
	writeConfig(t, cfg, render("text", false, ""))
	p.until("generation 5 from the file watch", gen(5))
	writeConfig(t, cfg, render("text", false, "server: request_timeout: \"32s\"\n"))
	time.Sleep(500 * time.Millisecond) // five times the watch's debounce
	if g := p.metrics(port)["aiassist_config_generation"]; g != 5 {
		t.Errorf("generation %v after a save with reload.watch false; want 5", g)
	}
	p.signal(syscall.SIGHUP)
	p.until("generation 6", gen(6))

	// runtime.library: refused, naming the setting and the restart.
	lib := filepath.Join(dir, "libonnxruntime.so")
	if err := os.Symlink(ortLib, lib); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, render("text", false, fmt.Sprintf("runtime: library: %q\n", lib)))
	p.signal(syscall.SIGHUP)
	p.until("the failed reload", func() bool {
		return p.metrics(port)[`aiassist_config_reloads_total{result="failure"}`] == 1
	})
	if g := p.metrics(port)["aiassist_config_generation"]; g != 6 {
		t.Errorf("generation %v after the refused reload; want 6", g)
	}
	if log := p.log.String(); !strings.Contains(log, "runtime.library: changed from") || !strings.Contains(log, "needs a restart") {
		t.Errorf("the log does not say runtime.library needs a restart:\n%s", log)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
