package daemon

import (
	"context"
	"io"
	"os"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/schema"
)

// AlertOptions are the alert thresholds of cfg's alerts section, as the
// evaluator and the exported rules take them. Load fills every threshold,
// so the section's defaults, the seed's HighErrorRate first, are
// alert.DefaultOptions. The webhook's retry settings that the file does
// not have keep the alert package's defaults.
func AlertOptions(cfg *schema.Config) alert.Options {
	a := cfg.Alerts
	o := alert.Options{
		ErrorRate: alert.ErrorRateOptions{
			Above: a.ErrorRate.Above, For: a.ErrorRate.For, Window: a.ErrorRate.Window, Severity: a.ErrorRate.Severity,
		},
		LatencyP95: alert.LatencyOptions{
			Above: a.LatencyP95.Above, For: a.LatencyP95.For, Window: a.LatencyP95.Window,
			Model: a.LatencyP95.Model, Severity: a.LatencyP95.Severity,
		},
		QueueDepth:   alert.QueueDepthOptions{Above: a.QueueDepth.Above, For: a.QueueDepth.For, Severity: a.QueueDepth.Severity},
		ReloadFailed: alert.ReloadFailedOptions{For: a.ReloadFailed.For, Severity: a.ReloadFailed.Severity},
		KeyExpiring:  alert.KeyExpiringOptions{Within: a.KeyExpiring.Within, Severity: a.KeyExpiring.Severity},
		CPU: alert.CPUOptions{
			Above: a.CPU.Above, For: a.CPU.For, Window: a.CPU.Window, Severity: a.CPU.Severity,
		},
	}
	if w := a.Webhook; w != nil {
		o.Webhook = alert.WebhookOptions{URL: w.URL, Timeout: w.Timeout, MaxAttempts: w.MaxAttempts}
	}
	return o
}

// startAlerts runs the in-process evaluator of the alert thresholds over
// the daemon's own series, until shutdown.
func (d *Daemon) startAlerts() error {
	host, _ := os.Hostname()
	e, err := alert.NewEvaluator(AlertOptions(d.current.Load().cfg), alert.EvaluatorOptions{
		Gather:         func(w io.Writer) { metrics.WritePrometheus(w, true) },
		Metrics:        d.set,
		Logger:         d.logger,
		ExternalLabels: map[string]string{"instance": host},
	})
	if err != nil {
		return err
	}
	d.alerts = e
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-d.quit; cancel() }()
	go e.Run(ctx)
	return nil
}
