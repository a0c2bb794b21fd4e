package schema

// The scaling policy of a model: its conversion and checks. The cron
// expressions are parsed here, as the controller parses them, so that a
// file the check passes is one the daemon can schedule.

import (
	"strconv"
	"strings"
	"time"
	// The zone database is built in, so that a schedule's timezone works
	// on a minimal host without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Scaling is a model's instance policy; see #Scaling in config.cue.
type Scaling struct {
	MinInstances int
	MaxInstances int
	Schedules    []Schedule // nil when none
	Target       Target
	OutStep      int
	InStep       int
	Cooldown     time.Duration
}

// Target is what moves a model's count of instances; a zero value of a
// signal turns it off.
type Target struct {
	CPUPercent       float64
	QueuePerInstance float64
	For              time.Duration
}

// Schedule is a window, from each time Cron matches to the next time Until
// matches, in which a model keeps at least Instances.
type Schedule struct {
	Cron      string
	Until     string
	Instances int
	Timezone  string // an IANA zone name, checked to exist
}

// ParseCron parses a schedule's cron or until expression as the daemon's
// controller does: five fields or a descriptor such as "@daily", without
// a TZ= prefix (the schedule's timezone says the zone).
func ParseCron(expr string) (cron.Schedule, error) {
	return cronParser.Parse(expr)
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Bounds of the scaling durations. Sub-minute windows are allowed so that
// tests and demos can watch the controller work.
const (
	minScalingWindow = time.Second
	maxScalingWindow = day
)

type rawScaling struct {
	MinInstances int           `json:"min_instances"`
	MaxInstances int           `json:"max_instances"`
	Schedules    []rawSchedule `json:"schedules"`
	Target       struct {
		CPUPercent       float64 `json:"cpu_percent"`
		QueuePerInstance float64 `json:"queue_per_instance"`
		For              string  `json:"for"`
	} `json:"target"`
	OutStep  int    `json:"scale_out_step"`
	InStep   int    `json:"scale_in_step"`
	Cooldown string `json:"cooldown"`
}

type rawSchedule struct {
	Cron      string `json:"cron"`
	Until     string `json:"until"`
	Instances int    `json:"instances"`
	Timezone  string `json:"timezone"`
}

// convertScaling converts and checks the scaling block of model name; nil
// (left out) stays nil.
func (c *checker) convertScaling(name string, raw *rawScaling) *Scaling {
	if raw == nil {
		return nil
	}
	at := func(elem ...string) []string { return append([]string{"models", label(name), "scaling"}, elem...) }
	s := &Scaling{
		MinInstances: raw.MinInstances,
		MaxInstances: raw.MaxInstances,
		Target: Target{
			CPUPercent:       raw.Target.CPUPercent,
			QueuePerInstance: raw.Target.QueuePerInstance,
			For:              c.durationIn(at("target", "for"), raw.Target.For, minScalingWindow, maxScalingWindow),
		},
		OutStep:  raw.OutStep,
		InStep:   raw.InStep,
		Cooldown: c.durationIn(at("cooldown"), raw.Cooldown, minScalingWindow, maxScalingWindow),
	}
	if s.MaxInstances < s.MinInstances {
		c.errorf(at("max_instances"), "max_instances %d is below min_instances %d; raise max_instances or lower min_instances", s.MaxInstances, s.MinInstances)
	}
	for i, sc := range raw.Schedules {
		sat := func(field string) []string { return at("schedules", strconv.Itoa(i), field) }
		c.checkCron(sat("cron"), sc.Cron)
		c.checkCron(sat("until"), sc.Until)
		if _, err := time.LoadLocation(sc.Timezone); err != nil || sc.Timezone == "Local" {
			c.errorf(sat("timezone"), "unknown time zone %q; write an IANA zone name such as \"Europe/Berlin\", \"Asia/Shanghai\" or \"UTC\"", sc.Timezone)
		}
		if sc.Instances > s.MaxInstances {
			c.errorf(sat("instances"), "the schedule keeps %d instances, above max_instances %d; lower instances or raise max_instances", sc.Instances, s.MaxInstances)
		}
		s.Schedules = append(s.Schedules, Schedule(sc))
	}
	return s
}

// checkCron parses the cron expression at path.
func (c *checker) checkCron(path []string, expr string) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		c.errorf(path, "%q names its zone in the expression; remove the prefix and set the schedule's timezone", expr)
		return
	}
	if _, err := ParseCron(expr); err != nil {
		c.errorf(path, "invalid cron expression %q: %v; write five fields (minute hour day-of-month month day-of-week) such as \"0 9 * * 1-5\", or a descriptor such as \"@daily\"", expr, err)
	}
}

// StartInstances returns the count the model starts with outside any
// schedule window: min_instances with a scaling block, else instances.
func (m Model) StartInstances() int {
	if m.Scaling != nil {
		return m.Scaling.MinInstances
	}
	return m.Instances
}
