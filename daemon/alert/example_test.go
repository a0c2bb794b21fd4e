package alert_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/aiassist/aiassist/daemon/alert"
)

// The daemon's wiring: the rule file for `aiassistd rules`, and the
// evaluator over the same metrics /metrics serves.
func Example() {
	opts := alert.DefaultOptions() // the daemon translates the config's alerts section
	opts.Webhook.URL = "http://127.0.0.1:9093/api/v2/alerts"

	rules, err := alert.Rules(opts)
	if err != nil {
		panic(err)
	}
	_ = rules // aiassistd rules writes these bytes to stdout

	set := metrics.NewSet()
	metrics.RegisterSet(set)
	defer metrics.UnregisterSet(set, true)
	e, err := alert.NewEvaluator(opts, alert.EvaluatorOptions{
		Gather:         func(w io.Writer) { metrics.WritePrometheus(w, true) },
		Metrics:        set,
		Logger:         slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		ExternalLabels: map[string]string{"instance": "host-a"},
	})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	e.Run(ctx) // on reload: e.Update(newOpts)
}
