package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestLogFileReopen: with logging.file, the daemon logs to the file, not
// stderr; after logrotate's rename, SIGUSR1 makes it open a new file at
// the path, and so does a reload that changes nothing else; the renamed
// files keep what was written before.
func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	logFile := filepath.Join(dir, "log", "aiassist.log")
	if err := os.Mkdir(filepath.Dir(logFile), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, fmt.Sprintf("listeners: [{port: %d}]\nlogging: file: \"log/aiassist.log\"\nreload: watch: false\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n", port))
	p := start(t, cfg)
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	// request logs one access line with its own request id.
	request := func(id string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v2/health/ready", port), nil)
		req.Header.Set("X-Request-Id", "id-"+id)
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("ready: %d", resp.StatusCode)
		}
	}
	p.until("the daemon serving", func() bool { return p.metrics(port)["aiassist_config_generation"] == 1 })
	request("one")
	p.until("line one in the file", func() bool { return strings.Contains(read(logFile), `"request_id":"id-one"`) })

	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	request("two") // still into the renamed file
	p.until("line two in the renamed file", func() bool { return strings.Contains(read(logFile+".1"), `"request_id":"id-two"`) })
	p.signal(syscall.SIGUSR1)
	p.until("a new file after SIGUSR1", func() bool { return strings.Contains(read(logFile), "reopened the log file") })
	request("three")
	p.until("line three in the new file", func() bool { return strings.Contains(read(logFile), `"request_id":"id-three"`) })

	if err := os.Rename(logFile, logFile+".2"); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.until("a new file after a reload", func() bool { return strings.Contains(read(logFile), "reopened the log file") })
	request("four")
	p.until("line four in the newest file", func() bool { return strings.Contains(read(logFile), `"request_id":"id-four"`) })

	for f, want := range map[string][]string{logFile + ".1": {"one", "two"}, logFile + ".2": {"three"}, logFile: {"four"}} {
		got := read(f)
		for _, id := range []string{"one", "two", "three", "four"} {
			if strings.Contains(got, `"request_id":"id-`+id+`"`) != slices.Contains(want, id) {
				t.Errorf("%s: line %s where it should not be, or missing:\n%s", filepath.Base(f), id, got)
			}
		}
	}
	if strings.Contains(p.log.String(), `"msg":"request"`) {
		t.Errorf("access lines on stderr with logging.file set:\n%s", p.log.String())
	}
	fi, err := os.Stat(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		t.Errorf("the log file has mode %04o: others may read it", perm)
	}
}
