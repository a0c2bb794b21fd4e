package daemon

import (
	"context"
	"io"
	"os"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/alert"
	"github.com/aiassist/aiassist/schema"
)

// AlertOptions are the alert thresholds of cfg, as the evaluator and the
// exported rules take them: the seed's HighErrorRate and the others at
// their defaults.
func AlertOptions(cfg *schema.Config) alert.Options {
	return alert.DefaultOptions()
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
