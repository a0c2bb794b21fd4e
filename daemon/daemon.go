// Package daemon runs aiassistd: it loads the config, opens the models,
// serves the API on the configured listeners, and stops cleanly.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/api"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/schema"
)

// Options configures Run.
type Options struct {
	ConfigPath string
	Version    string
	// LogOutput receives the JSON log; os.Stderr when nil.
	LogOutput io.Writer
}

// Daemon is a running aiassistd.
type Daemon struct {
	opts       Options
	logger     *slog.Logger
	level      *slog.LevelVar
	rt         *engine.Runtime
	api        *api.Server
	server     *fasthttp.Server
	current    atomic.Pointer[state]
	generation atomic.Uint64
	ready      atomic.Bool

	mu        sync.Mutex
	listeners map[string]net.Listener // by host:port
	serving   sync.WaitGroup
}

// Run loads the config, serves until ctx ends, then shuts down within the
// configured grace period. It returns an error if the first config cannot
// be served.
func Run(ctx context.Context, opts Options) error {
	d, err := start(opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return d.shutdown()
}

func start(opts Options) (*Daemon, error) {
	cfg, err := schema.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, level: new(slog.LevelVar), listeners: map[string]net.Listener{}}
	d.logger = newLogger(opts.LogOutput, cfg.Logging, d.level)
	d.rt, err = engine.Init(engine.RuntimeOptions{Library: cfg.Runtime.Library})
	if err != nil {
		return nil, err
	}
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	set.NewGauge(`aiassist_build_info{version=`+strconv.Quote(opts.Version)+`,onnxruntime=`+strconv.Quote(d.rt.Version())+`}`, func() float64 { return 1 })
	set.NewGauge(`aiassist_config_generation`, func() float64 { return float64(d.generation.Load()) })
	d.api = api.New(api.Options{Acquire: d.acquire, Ready: d.ready.Load, Logger: d.logger, Metrics: set, Version: opts.Version})

	st, err := buildState(d.rt, cfg, nil, 1)
	if err != nil {
		return nil, err
	}
	d.generation.Store(1)
	d.current.Store(st)
	d.server = &fasthttp.Server{
		Handler:                       d.api.Handler,
		ErrorHandler:                  d.api.ErrorHandler,
		Name:                          "aiassist",
		MaxRequestBodySize:            cfg.Server.MaxBodyBytes,
		ReadTimeout:                   cfg.Server.ReadTimeout,
		IdleTimeout:                   cfg.Server.IdleTimeout,
		NoDefaultDate:                 false,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
	}
	if err := d.openListeners(cfg); err != nil {
		closeUnused(st, nil)
		return nil, err
	}
	d.ready.Store(true)
	d.logger.Info("serving", "generation", 1, "config", cfg.Path, "models", cfg.ModelNames(),
		"listeners", d.addrs(), "onnxruntime", d.rt.Version(), "onnxruntime_library", d.rt.Library())
	return d, nil
}

func newLogger(w io.Writer, c schema.Logging, level *slog.LevelVar) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	level.Set(parseLevel(c.Level))
	ho := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, ho))
	}
	return slog.New(slog.NewJSONHandler(w, ho))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// acquire returns the current state with a reference held. The check after
// the increment makes sure a state being drained is never handed out.
func (d *Daemon) acquire() (*api.State, func()) {
	for {
		st := d.current.Load()
		st.refs.Add(1)
		if d.current.Load() == st {
			return st.api, func() { st.refs.Add(-1) }
		}
		st.refs.Add(-1)
	}
}

// openListeners starts serving on every listener of cfg that is not open
// yet, and returns the ones no longer configured, still open.
func (d *Daemon) openListeners(cfg *schema.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var opened []string
	for _, l := range cfg.Listeners {
		addr := l.HostPort()
		if d.listeners[addr] != nil {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, a := range opened {
				d.listeners[a].Close()
				delete(d.listeners, a)
			}
			return fmt.Errorf("cannot listen on %s: %w", addr, err)
		}
		d.listeners[addr] = ln
		opened = append(opened, addr)
		d.serving.Add(1)
		go func() {
			defer d.serving.Done()
			if err := d.server.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				d.logger.Error("listener stopped", "addr", addr, "err", err)
			}
		}()
	}
	return nil
}

func (d *Daemon) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.listeners))
	for _, ln := range d.listeners {
		out = append(out, ln.Addr().String())
	}
	return out
}

// shutdown stops accepting, lets in-flight requests finish within the
// grace period, then closes the models.
func (d *Daemon) shutdown() error {
	d.ready.Store(false)
	st := d.current.Load()
	grace := st.cfg.Server.ShutdownGrace
	d.logger.Info("stopping", "grace_seconds", grace.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := d.server.ShutdownWithContext(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		d.logger.Error("shutdown", "err", err)
	}
	d.serving.Wait()
	waitRefs(st, time.Until(deadlineOf(ctx)))
	for _, lm := range st.models {
		lm.close()
	}
	d.logger.Info("stopped")
	return nil
}

func deadlineOf(ctx context.Context) time.Time {
	t, _ := ctx.Deadline()
	return t
}

// waitRefs waits up to max for the state's requests to finish.
func waitRefs(st *state, max time.Duration) {
	end := time.Now().Add(max)
	for st.refs.Load() > 0 && time.Now().Before(end) {
		time.Sleep(2 * time.Millisecond)
	}
}
