package daemon

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/engine"
	"github.com/aiassist/aiassist/schema"
)

// What a config decides, and how it is applied. The first load and every
// reload run the same apply: it prepares each part — everything that can
// fail: parsing, opening and warming models, binding sockets, opening the
// admin socket, starting the file watch — and only when all are prepared
// commits them, which cannot fail. A failure aborts what was prepared and
// leaves the running daemon as it was.
//
//	part                              on reload
//	models, default_model            applied: new and changed models opened, unchanged reused
//	listeners                        applied: new addresses bound before old ones close
//	server.* (body limit, timeouts)  applied to connections accepted from then on
//	logging.level, logging.format    applied from the next log line
//	logging.access_log, log_prompts  applied to requests from then on
//	metrics.*                        applied
//	cache, a model's or key's cache  applied at the swap: new bounds; answers of kept models stay
//	reload.watch                     applied: the watch starts or stops
//	reload.admin_socket              applied: the new socket opens before the old one closes
//	models.*.scaling                 applied to the running instances: only what the new bounds need moves
//	runtime.library                  refused: the process loads ONNX Runtime once; restart
//
// restartOnly lists the settings a reload refuses to change.

// part is one prepared change. Commit cannot fail; Abort undoes the
// preparation of a change that will not be committed.
type part interface {
	Commit()
	Abort()
}

// restartOnly are the settings that only a restart applies, with how to
// read them from a config.
var restartOnly = []struct {
	field string
	get   func(*schema.Config) any
}{
	{"runtime.library", func(c *schema.Config) any { return c.Runtime.Library }},
}

// refuseRestartOnly returns an error naming each restart-only setting
// that differs between the running config and the new one.
func refuseRestartOnly(running, next *schema.Config) error {
	var errs []error
	for _, s := range restartOnly {
		if a, b := s.get(running), s.get(next); !reflect.DeepEqual(a, b) {
			errs = append(errs, fmt.Errorf("%s: changed from %q to %q, which needs a restart (systemctl restart aiassist); a reload cannot apply it, so nothing was changed — restore the old value to reload the rest", s.field, a, b))
		}
	}
	return errors.Join(errs...)
}

// apply loads the config file and, if it or a model file changed, prepares
// every part, swaps the new state in, commits the rest and drains the old
// state. It reports whether anything changed. With no running state (the
// first load) it also loads ONNX Runtime.
func (d *Daemon) apply() (bool, error) {
	cfg, err := schema.Load(d.opts.ConfigPath)
	if err != nil {
		return false, err
	}
	old := d.current.Load()
	if old != nil {
		if cfg.SameSettings(old.cfg) && !filesChanged(old) {
			reopenLog(d.logOut, d.logger)
			return false, nil
		}
		if err := refuseRestartOnly(old.cfg, cfg); err != nil {
			return false, err
		}
	} else if d.rt, err = engine.Init(engine.RuntimeOptions{Library: cfg.Runtime.Library}); err != nil {
		return false, err
	}
	gen := d.generation.Load() + 1

	var prepared []part
	fail := func(err error) (bool, error) {
		for i := len(prepared) - 1; i >= 0; i-- {
			prepared[i].Abort()
		}
		return false, err
	}
	// The new log level and format apply at commit, so a failed reload
	// logs in the old form.
	prepared = append(prepared, logPart{d, cfg.Logging})
	lf, err := d.logOut.prepare(cfg.Logging.File)
	if err != nil {
		return fail(err)
	}
	prepared = append(prepared, lf)
	next, err := buildState(d.logger, d.rt, d.set, cfg, old, gen)
	if err != nil {
		return fail(err)
	}
	prepared = append(prepared, statePart{d, old, next})
	prepared = append(prepared, scalingPart{d, next})
	plan, err := d.net.Prepare(listenSpecs(cfg), listenSettings(cfg))
	if err != nil {
		return fail(err)
	}
	prepared = append(prepared, plan)
	admin, err := d.prepareAdmin(cfg)
	if err != nil {
		return fail(err)
	}
	prepared = append(prepared, adminPart{d, admin})
	watch, err := d.prepareWatch(cfg)
	if err != nil {
		return fail(err)
	}
	prepared = append(prepared, watch)
	alerts := AlertOptions(cfg)
	if err := alerts.Check(); err != nil {
		return fail(err)
	}
	prepared = append(prepared, alertPart{d, alerts})

	// Nothing below fails: the new state serves from here on.
	for _, p := range prepared {
		p.Commit()
	}
	// The generation metric moves last, so whoever sees it has the new
	// listeners too.
	d.generation.Store(gen)
	for _, n := range next.api.Gate.RotationNotices() {
		d.logger.Warn("api key needs rotating", "key", n.Key, "reason", n.Reason, "at", n.At, "detail", n.Message)
	}
	if cfg.Auth.Open {
		d.logger.Warn("auth.open is true: inference needs no credential on any listener")
	}
	if old != nil {
		d.drain(old, next)
	}
	return true, nil
}

// alertPart gives the evaluator the new thresholds; it keeps the state
// of alerts that go on. At the first load there is no evaluator yet.
type alertPart struct {
	d    *Daemon
	opts alert.Options
}

func (p alertPart) Commit() {
	if p.d.alerts != nil {
		// Check passed on these options.
		_ = p.d.alerts.Update(p.opts)
	}
}

func (p alertPart) Abort() {}

// logPart switches the log's level and format.
type logPart struct {
	d   *Daemon
	cfg schema.Logging
}

func (p logPart) Commit() { p.d.logs.set(p.cfg) }
func (p logPart) Abort()  {}

// statePart swaps in the new state: its models' series become visible and
// requests from now on get it.
type statePart struct {
	d         *Daemon
	old, next *state
}

func (p statePart) Commit() {
	publish(p.old, p.next)
	p.d.current.Store(p.next)
}

func (p statePart) Abort() { discard(p.next, p.old) }

// adminPart opens or closes the admin socket.
type adminPart struct {
	d *Daemon
	a *adminServer
}

func (p adminPart) Commit() { p.d.commitAdmin(p.a) }

func (p adminPart) Abort() {
	if p.a != nil && p.a.ln != nil {
		p.a.ln.Close()
	}
}
