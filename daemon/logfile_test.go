package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// useFile points o at path as a reload does.
func useFile(t *testing.T, o *logOutput, path string) {
	t.Helper()
	p, err := o.prepare(path)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
}

// readLines returns the lines of a log file, each checked to be one whole
// JSON record.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: a line that is not one JSON record: %q: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end in a whole line", path)
	}
	return out
}

// TestLogOutputReopen: after logrotate's rename, lines go on into the
// moved file until Reopen, and from then on into a new file at the path,
// created 0640.
func TestLogOutputReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aiassist.log")
	var stderr bytes.Buffer
	o := newLogOutput(&stderr)
	defer o.Close()
	log := slog.New(slog.NewJSONHandler(o, nil))
	log.Info("to stderr")
	useFile(t, o, path)
	log.Info("one")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	log.Info("two")
	if err := o.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("three")

	if !strings.Contains(stderr.String(), `"msg":"to stderr"`) || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr got %q", stderr.String())
	}
	msgs := func(p string) string {
		var s []string
		for _, m := range readLines(t, p) {
			s = append(s, m["msg"].(string))
		}
		return strings.Join(s, ",")
	}
	if got := msgs(path + ".1"); got != "one,two" {
		t.Errorf("rotated file holds %q, want one,two", got)
	}
	if got := msgs(path); got != "three" {
		t.Errorf("new file holds %q, want three", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 || perm&0o600 != 0o600 || perm&^logFileMode != 0 {
		t.Errorf("new log file has mode %04o, want 0640 (less the umask)", perm)
	}
}

// TestLogOutputConcurrent: lines written from many goroutines, while the
// file is moved and reopened again and again, all arrive, each whole in
// one of the files.
func TestLogOutputConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aiassist.log")
	o := newLogOutput(nil)
	defer o.Close()
	useFile(t, o, path)
	// Two handlers, as across a reload that changes the format's
	// handler: they share no lock of their own.
	logs := []*slog.Logger{slog.New(slog.NewJSONHandler(o, nil)), slog.New(slog.NewJSONHandler(o, nil))}
	const writers, lines, rotations = 8, 300, 20
	long := strings.Repeat("x", 8192) // longer than a pipe's atomic write
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				logs[i%2].Info("line", "w", w, "i", i, "pad", long)
			}
		}()
	}
	for r := range rotations {
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		if err := o.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	seen := map[string]bool{}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		for _, m := range readLines(t, f) {
			key := fmt.Sprint(m["w"], "/", m["i"])
			if seen[key] || m["pad"] != long {
				t.Fatalf("line %s twice or cut", key)
			}
			seen[key] = true
		}
	}
	if len(seen) != writers*lines {
		t.Errorf("%d lines arrived, want %d", len(seen), writers*lines)
	}
}

// TestLogOutputReopenFails: when the path cannot be opened again, the old
// file stays in use and nothing is lost.
func TestLogOutputReopenFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "aiassist.log")
	o := newLogOutput(nil)
	defer o.Close()
	useFile(t, o, path)
	log := slog.New(slog.NewJSONHandler(o, nil))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// A directory where the file was: even root cannot open it for
	// writing.
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	reopenLog(o, slog.New(slog.NewJSONHandler(&logged, nil)))
	if !strings.Contains(logged.String(), "cannot reopen the log file") || !strings.Contains(logged.String(), "logging.file") {
		t.Errorf("failure logged as %q", logged.String())
	}
	log.Info("still here")
	if got := readLines(t, path+".1"); len(got) != 1 || got[0]["msg"] != "still here" {
		t.Errorf("old file holds %v", got)
	}
}

// TestLogOutputPrepare: a reload that fails after the file was opened
// leaves the output as it was; one that removes logging.file goes back
// to stderr; a path that cannot be opened fails the reload, saying which
// setting and what to do.
func TestLogOutputPrepare(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	o := newLogOutput(&stderr)
	defer o.Close()
	log := slog.New(slog.NewJSONHandler(o, nil))
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	useFile(t, o, a)

	p, err := o.prepare(b)
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	log.Info("after abort")
	if got := readLines(t, a); len(got) != 1 {
		t.Errorf("a.log holds %v after an aborted change", got)
	}

	useFile(t, o, "")
	log.Info("back to stderr")
	if !strings.Contains(stderr.String(), "back to stderr") {
		t.Errorf("stderr got %q", stderr.String())
	}
	if err := o.Reopen(); err != nil {
		t.Errorf("Reopen without a file: %v", err)
	}

	_, err = o.prepare(filepath.Join(dir, "missing", "c.log"))
	if err == nil || !strings.HasPrefix(err.Error(), "logging.file: cannot open the log file") || !strings.Contains(err.Error(), "create its directory") {
		t.Errorf("missing directory: %v", err)
	}
	_, err = o.prepare(dir)
	if err == nil || !strings.Contains(err.Error(), "logging.file") {
		t.Errorf("a directory: %v", err)
	}
}
