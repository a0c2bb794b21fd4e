package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// logOutput is where the daemon's log lines go: the writer it started
// with (stderr, which journald reads), or logging.file. It is pointed at
// another file by a reload, and opens its file again on SIGUSR1 and on
// every reload, so logrotate can move the file away and the next lines go
// to a new one at the configured path.
//
// slog handlers write each record with one Write; logOutput takes a lock
// around each, so lines from handlers of two generations (a reload
// changes the handler) never interleave, and a line is never split
// between the old file and the new one.
type logOutput struct {
	mu       sync.Mutex
	fallback io.Writer
	path     string   // "" writes to fallback
	f        *os.File // nil when path is ""
}

// logFileMode is the mode a new log file gets: the daemon writes, its
// group (adm, for log readers) reads, others nothing. Prompts may be in
// it.
const logFileMode = 0o640

func newLogOutput(fallback io.Writer) *logOutput {
	if fallback == nil {
		fallback = os.Stderr
	}
	return &logOutput{fallback: fallback}
}

// Write writes one log line whole, to the file or to the fallback.
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return o.fallback.Write(p)
	}
	return o.f.Write(p)
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, logFileMode)
	if err != nil {
		return nil, fmt.Errorf("logging.file: cannot open the log file: %w; create its directory, or give the daemon's user write access to it", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("logging.file: %s is not a regular file; name a file, or remove logging.file to log to stderr", path)
	}
	return f, nil
}

// Reopen opens the file again at its path, for SIGUSR1 after logrotate
// moved it: lines written before it returns go to the old file, lines
// after to the new. If the file cannot be opened, the old one is kept
// and the error returned. Without a file it does nothing.
func (o *logOutput) Reopen() error {
	o.mu.Lock()
	path := o.path
	o.mu.Unlock()
	if path == "" {
		return nil
	}
	// Opened outside the lock, so a slow file system holds no log line
	// up; swapped under it.
	f, err := openLogFile(path)
	if err != nil {
		return err
	}
	o.mu.Lock()
	if o.path != path {
		// A reload pointed the output elsewhere meanwhile.
		o.mu.Unlock()
		f.Close()
		return nil
	}
	old := o.f
	o.f = f
	o.mu.Unlock()
	return old.Close()
}

// prepare opens path ("" for the fallback) for a config generation; the
// part's Commit points the output at it and closes the file before, its
// Abort closes the new file. The same path as now is opened again, so a
// reload after logrotate, as SIGUSR1, starts a new file.
func (o *logOutput) prepare(path string) (part, error) {
	p := &logFilePart{o: o, path: path}
	if path != "" {
		f, err := openLogFile(path)
		if err != nil {
			return nil, err
		}
		p.f = f
	}
	return p, nil
}

// Close closes the file; later lines go to the fallback.
func (o *logOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.f
	o.f, o.path = nil, ""
	if f == nil {
		return nil
	}
	return f.Close()
}

// logFilePart is a prepared change of logging.file.
type logFilePart struct {
	o    *logOutput
	path string
	f    *os.File
}

func (p *logFilePart) Commit() {
	p.o.mu.Lock()
	old := p.o.f
	p.o.f, p.o.path = p.f, p.path
	p.o.mu.Unlock()
	if old != nil {
		// Every line written to it is written: Write holds the lock.
		old.Close()
	}
}

func (p *logFilePart) Abort() {
	if p.f != nil {
		p.f.Close()
	}
}

// reopenLog opens o's file again, for SIGUSR1 or a reload that changes
// nothing else, and logs the outcome: to the new file, or on failure to
// the old one, which stays in use.
func reopenLog(o *logOutput, logger *slog.Logger) {
	if err := o.Reopen(); err != nil {
		logger.Error("cannot reopen the log file; still writing to the old one", "err", err)
		return
	}
	if path := o.currentPath(); path != "" {
		logger.Info("reopened the log file", "path", path)
	}
}

func (o *logOutput) currentPath() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.path
}

var _ part = (*logFilePart)(nil)
