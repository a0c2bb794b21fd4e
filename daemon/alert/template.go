package alert

import (
	"fmt"
	"math"
	"strings"
	"text/template"
)

// The annotations are Prometheus templates. The evaluator expands them
// itself, with the same variables ($labels, $value) and the same output of
// the few functions the rules use, so a webhook post from the daemon reads
// like one from Prometheus.

// templateDefs is what Prometheus puts before every alert template.
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"

var templateFuncs = template.FuncMap{
	"humanize":           humanize,
	"humanizeDuration":   humanizeDuration,
	"humanizePercentage": humanizePercentage,
}

type templateData struct {
	Labels         map[string]string
	ExternalLabels map[string]string
	Value          float64
}

// parseTemplate parses an annotation; the rule texts are ours, so an error
// is a bug that a test catches.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(templateDefs + text)
}

func expand(t *template.Template, d templateData) string {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return fmt.Sprintf("cannot expand the %s template: %v", t.Name(), err)
	}
	return b.String()
}

// humanizePercentage matches Prometheus: 0.0512 is "5.12%".
func humanizePercentage(v float64) string {
	return fmt.Sprintf("%.4g%%", v*100)
}

// humanize matches Prometheus: SI prefixes, four significant digits.
func humanize(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	prefix := ""
	if math.Abs(v) >= 1 {
		for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
			if math.Abs(v) < 1000 {
				break
			}
			prefix, v = p, v/1000
		}
		return fmt.Sprintf("%.4g%s", v, prefix)
	}
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix, v = p, v*1000
	}
	return fmt.Sprintf("%.4g%s", v, prefix)
}

// humanizeDuration matches Prometheus: seconds as "1d 2h 3m 4s", "2.5s" or
// "250ms".
func humanizeDuration(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	if v == 0 {
		return "0s"
	}
	if math.Abs(v) >= 1 {
		sign := ""
		if v < 0 {
			sign, v = "-", -v
		}
		n := int64(v)
		s, m, h, d := n%60, n/60%60, n/3600%24, n/86400
		switch {
		case d != 0:
			return fmt.Sprintf("%s%dd %dh %dm %ds", sign, d, h, m, s)
		case h != 0:
			return fmt.Sprintf("%s%dh %dm %ds", sign, h, m, s)
		case m != 0:
			return fmt.Sprintf("%s%dm %ds", sign, m, s)
		}
		return fmt.Sprintf("%s%.4gs", sign, v)
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix, v = p, v*1000
	}
	return fmt.Sprintf("%.4g%ss", v, prefix)
}
