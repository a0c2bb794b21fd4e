// Package daemon runs aiassistd: it loads the config, opens the models,
// serves the API on the configured listeners, reloads on SIGHUP, on a
// change of the config's directory or from the admin socket, talks to
// systemd, and stops cleanly.
package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/daemon/api"
	"github.com/aiassist/aiassist/daemon/listener"
	"github.com/aiassist/aiassist/engine"
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
	logs       *logSwitch
	logOut     *logOutput
	logger     *slog.Logger
	rt         *engine.Runtime
	api        *api.Server
	set        *metrics.Set
	net        *listener.Manager
	notify     notifier
	probeToken string

	current    atomic.Pointer[state]
	generation atomic.Uint64
	ready      atomic.Bool
	stopping   atomic.Bool
	reloading  atomic.Bool

	reloadMetrics *reloadMetrics
	statusMu      sync.Mutex
	lastErr       string // first line of the last reload's error; "" after a success
	lastSuccess   time.Time
	lastLoad      reloadStatus // for the status page
	started       time.Time

	triggers     chan string
	calls        chan reloadCall
	pings        chan struct{}
	quit         chan struct{}
	reloaderDone chan struct{}
	watchdogDone chan struct{}

	// Owned by apply, which runs on the reloader goroutine, and by start
	// and shutdown, which do not run alongside it.
	watcher *watcher
	admin   *adminServer
	drained chan struct{} // closed when the last drain is done

	alerts  *alert.Evaluator
	scaling scaling // the models' scaling controllers
}

// Run loads the config, serves until ctx ends, then shuts down within the
// configured grace period. SIGHUP reloads; its handler is registered
// before the config is first read, so a SIGHUP sent while starting is not
// lost (nor does it kill the process). It returns an error if the first
// config cannot be served.
func Run(ctx context.Context, opts Options) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	d, err := start(opts)
	if err != nil {
		return err
	}
	for {
		select {
		case <-hup:
			d.trigger("SIGHUP")
		case <-usr1:
			reopenLog(d.logOut, d.logger)
		case <-ctx.Done():
			return d.shutdown()
		}
	}
}

// start serves the config. The first load is the apply that every reload
// runs, with no state before it.
func start(opts Options) (*Daemon, error) {
	out := newLogOutput(opts.LogOutput)
	d := &Daemon{
		opts:         opts,
		logOut:       out,
		logs:         newLogSwitch(out),
		probeToken:   newProbeToken(),
		triggers:     make(chan string, 1),
		calls:        make(chan reloadCall),
		pings:        make(chan struct{}),
		quit:         make(chan struct{}),
		reloaderDone: make(chan struct{}),
		watchdogDone: make(chan struct{}),
		drained:      make(chan struct{}),
		lastSuccess:  time.Now(),
		started:      time.Now(),
	}
	close(d.drained)
	d.logger = d.logs.logger()
	d.notify = notifier{logger: d.logger}
	d.set = metrics.NewSet()
	d.set.NewGauge(`aiassist_config_generation`, func() float64 { return float64(d.generation.Load()) })
	d.reloadMetrics = newReloadMetrics(d, d.set)
	d.api = api.New(api.Options{Acquire: d.acquire, Ready: d.ready.Load, Logger: d.logger, Metrics: d.set, Version: opts.Version, Status: d.statusOf})
	d.net = listener.New(d.logger, d.handler, d.api.ErrorHandler, d.set)
	if err := d.net.UseActivated(); err != nil {
		return nil, err
	}

	started := time.Now()
	if _, err := d.apply(); err != nil {
		d.net.Shutdown(context.Background())
		return nil, err
	}
	d.set.NewGauge(`aiassist_build_info{version=`+strconv.Quote(opts.Version)+`,onnxruntime=`+strconv.Quote(d.rt.Version())+`}`, func() float64 { return 1 })
	// The CPU alert divides the process's CPU seconds by this.
	d.set.NewGauge(`aiassist_cpu_cores`, func() float64 { return float64(runtime.NumCPU()) })
	metrics.RegisterSet(d.set)
	if err := d.startAlerts(); err != nil {
		d.net.Shutdown(context.Background())
		return nil, err
	}
	d.net.StartActivated()
	go d.reloader()
	wctx, cancel := context.WithCancel(context.Background())
	go func() { <-d.quit; cancel() }()
	go func() {
		defer close(d.watchdogDone)
		d.watchdog(wctx)
	}()
	d.recordStart()
	d.ready.Store(true)
	cfg := d.current.Load().cfg
	d.logger.Info("serving", "generation", 1, "config", cfg.Path, "models", cfg.ModelNames(),
		"listeners", addrStrings(d.net.Addrs()), "onnxruntime", d.rt.Version(), "onnxruntime_library", d.rt.Library(),
		"duration_seconds", time.Since(started).Seconds())
	d.notify.ready(d.status())
	return d, nil
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

// handler is the request handler of server generation g: the API, plus
// the watchdog probe, plus ending keep-alive connections that should not
// carry another request.
func (d *Daemon) handler(g *listener.Gen) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if d.isProbe(ctx) {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			ctx.SetConnectionClose()
			return
		}
		d.api.Handler(ctx)
		if d.stopping.Load() || g.EndsConnection(ctx.Conn()) {
			ctx.SetConnectionClose()
		}
	}
}

// shutdown makes readiness false, stops accepting, lets in-flight
// requests finish within the grace period, then closes the models.
func (d *Daemon) shutdown() error {
	d.ready.Store(false)
	d.stopping.Store(true)
	d.notify.stopping()
	close(d.quit)
	// A reload in progress completes first; nothing reloads after it.
	<-d.reloaderDone
	<-d.watchdogDone
	if d.watcher != nil {
		d.watcher.close()
	}
	if d.admin != nil {
		d.admin.close()
	}
	// The instances stay as they are while the last requests finish.
	d.scaling.stop()
	st := d.current.Load()
	grace := st.cfg.Server.ShutdownGrace
	d.logger.Info("stopping", "grace_seconds", grace.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	d.net.Shutdown(ctx)
	// A state replaced by a reload may still have requests on models the
	// current state shares with it; those are closed below only once its
	// drain is done too.
	drained := false
	select {
	case <-d.drained:
		drained = true
	case <-ctx.Done():
	}
	if drained && waitRefs(ctx, st) {
		closeUnused(st, nil)
		d.logger.Info("stopped")
	} else {
		// Closing a model under a running inference could crash the
		// process; the exit releases everything anyway.
		d.logger.Warn("stopped with requests still running after the grace period", "requests", st.refs.Load())
	}
	d.alerts.Close()
	metrics.UnregisterSet(d.set, true)
	return nil
}
