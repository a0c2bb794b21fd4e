package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Results of a reload, as the reloads_total label says them.
const (
	resultSuccess   = "success"
	resultUnchanged = "unchanged"
	resultFailure   = "failure"
)

// ReloadResult is what a reload did.
type ReloadResult struct {
	Result     string `json:"result"` // "success", "unchanged" or "failure"
	Generation uint64 `json:"generation"`
	Error      string `json:"error,omitempty"`
}

// reloadCall is a reload asked for by someone who waits for its result.
type reloadCall struct {
	source string
	reply  chan ReloadResult
}

// reloadMetrics are the config series, in the daemon's metric set.
type reloadMetrics struct {
	reloads  map[string]*metrics.Counter
	duration *metrics.PrometheusHistogram
}

// reloadBuckets cover a config-only reload (milliseconds) up to loading
// large models (a minute).
var reloadBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newReloadMetrics(d *Daemon, set *metrics.Set) *reloadMetrics {
	m := &reloadMetrics{reloads: map[string]*metrics.Counter{}}
	for _, r := range []string{resultSuccess, resultUnchanged, resultFailure} {
		m.reloads[r] = set.NewCounter(`aiassist_config_reloads_total{result="` + r + `"}`)
	}
	m.duration = set.NewPrometheusHistogramExt("aiassist_config_reload_duration_seconds", reloadBuckets)
	set.NewGauge("aiassist_config_last_reload_successful", func() float64 {
		d.statusMu.Lock()
		defer d.statusMu.Unlock()
		if d.lastErr != "" {
			return 0
		}
		return 1
	})
	set.NewGauge("aiassist_config_last_reload_success_timestamp_seconds", func() float64 {
		d.statusMu.Lock()
		defer d.statusMu.Unlock()
		return float64(d.lastSuccess.UnixMilli()) / 1e3
	})
	return m
}

// trigger asks for a reload without waiting for it. Triggers that arrive
// while one is pending are folded into it: the reload reads the file as
// it is when it runs.
func (d *Daemon) trigger(source string) {
	select {
	case d.triggers <- source:
	default:
	}
}

// reloadAndWait reloads the config and waits for the result; the admin
// endpoint calls it.
func (d *Daemon) reloadAndWait(ctx context.Context, source string) (ReloadResult, error) {
	c := reloadCall{source: source, reply: make(chan ReloadResult, 1)}
	select {
	case d.calls <- c:
	case <-ctx.Done():
		return ReloadResult{}, ctx.Err()
	case <-d.quit:
		return ReloadResult{}, errors.New("the daemon is stopping")
	}
	select {
	case r := <-c.reply:
		return r, nil
	case <-ctx.Done():
		return ReloadResult{}, ctx.Err()
	}
}

// reloader is the one goroutine that reloads, so reloads never overlap.
// It also answers the watchdog's pings.
func (d *Daemon) reloader() {
	defer close(d.reloaderDone)
	for {
		select {
		case <-d.quit:
			return
		case src := <-d.triggers:
			d.reload(src)
		case c := <-d.calls:
			c.reply <- d.reload(c.source)
		case <-d.pings:
		}
	}
}

// reload applies the config file, telling systemd before and after. Any
// error leaves everything as it was.
func (d *Daemon) reload(source string) ReloadResult {
	start := time.Now()
	d.reloading.Store(true)
	defer d.reloading.Store(false)
	d.notify.reloading(source)

	changed, err := d.apply()
	elapsed := time.Since(start)
	d.reloadMetrics.duration.Update(elapsed.Seconds())
	res := ReloadResult{Generation: d.generation.Load()}
	d.statusMu.Lock()
	switch {
	case err != nil:
		res.Result, res.Error = resultFailure, err.Error()
		d.lastErr, _, _ = strings.Cut(err.Error(), "\n")
	case !changed:
		res.Result = resultUnchanged
		d.lastErr, d.lastSuccess = "", time.Now()
	default:
		res.Result = resultSuccess
		d.lastErr, d.lastSuccess = "", time.Now()
	}
	d.lastLoad = reloadStatus{Time: time.Now().UTC(), Source: source, Result: res.Result, Error: d.lastErr}
	d.statusMu.Unlock()
	d.reloadMetrics.reloads[res.Result].Inc()
	switch res.Result {
	case resultFailure:
		d.logger.Error("reload failed; using the last successfully loaded config", "source", source,
			"generation", res.Generation, "duration_seconds", elapsed.Seconds(), "err", err)
	case resultUnchanged:
		d.logger.Info("config unchanged", "source", source, "generation", res.Generation, "duration_seconds", elapsed.Seconds())
	default:
		st := d.current.Load()
		d.logger.Info("reloaded", "source", source, "generation", res.Generation, "duration_seconds", elapsed.Seconds(),
			"models", st.cfg.ModelNames(), "listeners", addrStrings(d.net.Addrs()))
	}
	d.notify.ready(d.status())
	return res
}

// drain closes old's models that next does not serve once old's last
// request is done. Drains run in the order of the swaps, so a model
// shared by two replaced states is closed only after both are drained.
func (d *Daemon) drain(old, next *state) {
	prev := d.drained
	done := make(chan struct{})
	d.drained = done
	go func() {
		defer close(done)
		<-prev
		waitRefs(context.Background(), old)
		closeUnused(old, next)
	}()
}

func addrStrings[T fmt.Stringer](addrs []T) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
