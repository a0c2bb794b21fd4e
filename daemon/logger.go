package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/aiassist/aiassist/schema"
)

// logSwitch is the root of the daemon's logger: a reload changes its level
// and format (logging.level, logging.format) in place, so every component
// holding the *slog.Logger logs in the new form from the next line on.
type logSwitch struct {
	w     io.Writer
	level slog.LevelVar
	root  atomic.Pointer[slog.Handler]
}

func newLogSwitch(w io.Writer) *logSwitch {
	if w == nil {
		w = os.Stderr
	}
	s := &logSwitch{w: w}
	s.set(schema.Logging{Level: "info", Format: "json"})
	return s
}

// set switches to the level and format of c. It cannot fail: the schema
// allows only levels and formats slog has.
func (s *logSwitch) set(c schema.Logging) {
	s.level.Set(parseLevel(c.Level))
	ho := &slog.HandlerOptions{Level: &s.level}
	var h slog.Handler
	if c.Format == "text" {
		h = slog.NewTextHandler(s.w, ho)
	} else {
		h = slog.NewJSONHandler(s.w, ho)
	}
	s.root.Store(&h)
}

func (s *logSwitch) logger() *slog.Logger { return slog.New(&switchHandler{s: s}) }

func parseLevel(v string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// switchHandler sends each record to the switch's current handler, with
// the attributes and groups added by With and WithGroup replayed on it.
type switchHandler struct {
	s   *logSwitch
	ops []func(slog.Handler) slog.Handler
}

func (h *switchHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.s.level.Level()
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	inner := *h.s.root.Load()
	for _, op := range h.ops {
		inner = op(inner)
	}
	return inner.Handle(ctx, r)
}

func (h *switchHandler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	return &switchHandler{s: h.s, ops: append(h.ops[:len(h.ops):len(h.ops)], op)}
}

func (h *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(in slog.Handler) slog.Handler { return in.WithAttrs(as) })
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	return h.with(func(in slog.Handler) slog.Handler { return in.WithGroup(name) })
}
