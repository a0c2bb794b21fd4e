package daemon

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/aiassist/aiassist/schema"
)

// debounce is how long the watched directories must be quiet before a
// change triggers a reload: an editor's save or a copy is several events.
const debounce = 100 * time.Millisecond

// watcher triggers a reload when a file in a watched directory changes.
// It watches directories, not files: editors save by writing a new file
// and renaming it over the old one, and Kubernetes swaps a ConfigMap by
// re-pointing the ..data symlink, and either leaves a watch on the file
// itself watching the old, unlinked inode.
type watcher struct {
	logger  *slog.Logger
	fs      *fsnotify.Watcher
	trigger func(source string)
	dirs    []string
	files   atomic.Pointer[map[string]bool] // the config and model files
	done    chan struct{}
}

func newWatcher(logger *slog.Logger, trigger func(string)) (*watcher, error) {
	fs, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{logger: logger, fs: fs, trigger: trigger, done: make(chan struct{})}
	w.files.Store(&map[string]bool{})
	go w.run()
	return w, nil
}

// set watches the directories of files, and in them only files. A
// directory that cannot be watched is logged; SIGHUP still reloads.
func (w *watcher) set(files []string) {
	names := map[string]bool{}
	var dirs []string
	for _, f := range files {
		names[filepath.Clean(f)] = true
		dirs = append(dirs, filepath.Dir(f))
	}
	w.files.Store(&names)
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	for _, d := range w.dirs {
		if !slices.Contains(dirs, d) {
			w.fs.Remove(d)
		}
	}
	var now []string
	for _, d := range dirs {
		if slices.Contains(w.dirs, d) {
			now = append(now, d)
			continue
		}
		if err := w.fs.Add(d); err != nil {
			w.logger.Warn("cannot watch directory; reload with SIGHUP after changing files in it", "dir", d, "err", err)
			continue
		}
		now = append(now, d)
	}
	w.dirs = now
}

func (w *watcher) close() {
	w.fs.Close()
	<-w.done
}

func (w *watcher) run() {
	defer close(w.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				t.Stop()
				return
			}
			if !w.relevant(ev) {
				continue
			}
			t.Reset(debounce)
		case err, ok := <-w.fs.Errors:
			if !ok {
				t.Stop()
				return
			}
			w.logger.Warn("file watch error", "err", err)
			t.Reset(debounce)
		case <-t.C:
			w.trigger("file change")
		}
	}
}

// relevant tells the events that may change what is served: those on the
// config file or a model file, and Kubernetes' ..data symlink swap (its
// entries all start with ".."). Others, such as a log file or an editor's
// swap file beside the config, and a change of mode, are left out.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if strings.HasPrefix(filepath.Base(ev.Name), "..") {
		return true
	}
	return (*w.files.Load())[filepath.Clean(ev.Name)]
}

// watchFiles are the files whose changes may change what is served: the
// config file, each model file, the certificates and keys.
func watchFiles(configPath string, models []string) []string {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		abs = configPath
	}
	return append([]string{abs}, models...)
}

// modelPaths are the files the config's models are loaded from (a
// model's path itself when its files cannot be listed, so that fixing it
// is seen).
func modelPaths(cfg *schema.Config) []string {
	var out []string
	for _, m := range cfg.Models {
		files, err := modelFiles(m)
		if err != nil {
			files = []string{m.Path}
		}
		out = append(out, files...)
	}
	return out
}

// watchPart starts, re-aims or stops the file watch (reload.watch).
type watchPart struct {
	d     *Daemon
	start *watcher // a watcher to start, or nil
	stop  bool
	files []string
}

// prepareWatch starts a watcher when reload.watch turns on. A watch that
// cannot start fails the load: an operator who asked for it should know
// that saving the file will not reload.
func (d *Daemon) prepareWatch(cfg *schema.Config) (part, error) {
	p := watchPart{d: d, files: watchFiles(d.opts.ConfigPath, append(modelPaths(cfg), accessFiles(cfg)...))}
	switch {
	case cfg.Reload.Watch && d.watcher == nil:
		w, err := newWatcher(d.logger, d.trigger)
		if err != nil {
			return nil, fmt.Errorf("reload.watch: cannot watch the config's directory: %w; raise fs.inotify.max_user_instances, or set reload.watch: false and reload with SIGHUP", err)
		}
		p.start = w
	case !cfg.Reload.Watch && d.watcher != nil:
		p.stop = true
	}
	return p, nil
}

func (p watchPart) Commit() {
	d := p.d
	switch {
	case p.stop:
		d.watcher.close()
		d.watcher = nil
		d.logger.Info("stopped watching the config; reload with SIGHUP or aiassistd reload")
		return
	case p.start != nil:
		d.watcher = p.start
	}
	if d.watcher != nil {
		d.watcher.set(p.files)
	}
}

func (p watchPart) Abort() {
	if p.start != nil {
		p.start.close()
	}
}
