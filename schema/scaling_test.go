package schema

import (
	"strings"
	"testing"
	"time"
)

// TestScaling loads the scaling block and its defaults.
func TestScaling(t *testing.T) {
	cfg, err := Load("testdata/scaling/good.cue")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.Cores != 8 {
		t.Errorf("runtime.cores = %d, want 8", cfg.Runtime.Cores)
	}
	q := cfg.Models["qwen"]
	want := Scaling{
		MinInstances: 1, MaxInstances: 4,
		Schedules: []Schedule{{Cron: "0 9 * * 1-5", Until: "0 18 * * 1-5", Instances: 2, Timezone: "Asia/Shanghai"}},
		Target:    Target{CPUPercent: 80, QueuePerInstance: 8, For: 5 * time.Minute},
		OutStep:   1, InStep: 1, Cooldown: 30 * time.Minute,
	}
	if q.Scaling == nil || !sameScaling(*q.Scaling, want) {
		t.Errorf("qwen scaling = %+v, want %+v", q.Scaling, want)
	}
	if q.StartInstances() != 1 {
		t.Errorf("qwen starts with %d instances, want min_instances 1", q.StartInstances())
	}
	if p := cfg.Models["plain"]; p.Scaling != nil || p.StartInstances() != 3 {
		t.Errorf("plain = %+v, want no scaling and 3 instances", p)
	}
	s := cfg.Models["short"].Scaling
	if s == nil || s.MinInstances != 1 || s.MaxInstances != 4 || s.Target.For != time.Second || s.Cooldown != 2*time.Second || s.Target.CPUPercent != 0 || s.Schedules != nil {
		t.Errorf("short scaling = %+v, want the defaults with for 1s and cooldown 2s", s)
	}
}

func sameScaling(a, b Scaling) bool {
	if len(a.Schedules) != len(b.Schedules) {
		return false
	}
	for i := range a.Schedules {
		if a.Schedules[i] != b.Schedules[i] {
			return false
		}
	}
	a.Schedules, b.Schedules = nil, nil
	return a.MinInstances == b.MinInstances && a.MaxInstances == b.MaxInstances && a.Target == b.Target &&
		a.OutStep == b.OutStep && a.InStep == b.InStep && a.Cooldown == b.Cooldown
}

// TestScalingBad checks that each mistake of a scaling block is placed
// at its value with file:line:col.
func TestScalingBad(t *testing.T) {
	const file = "testdata/scaling/bad.cue"
	_, err := Load(file)
	if err == nil {
		t.Fatal("Load succeeded, want errors")
	}
	want := []string{
		file + `:6:18: models.demo.scaling.max_instances: max_instances 2 is below min_instances 3`,
		file + `:8:11: models.demo.scaling.schedules.0.cron: invalid cron expression "0 25 * * 1-5"`,
		file + `:9:11: models.demo.scaling.schedules.1.cron: "TZ=UTC 0 9 * * *" names its zone in the expression`,
		file + `:9:38: models.demo.scaling.schedules.1.until: invalid cron expression "0 18 * *"`,
		file + `:9:61: models.demo.scaling.schedules.1.instances: the schedule keeps 9 instances, above max_instances 2`,
		file + `:9:74: models.demo.scaling.schedules.1.timezone: unknown time zone "Mars/Olympus"`,
		file + `:11:34: models.demo.scaling.target.for: invalid duration "500ms": must be from "1s" to "1d"`,
		file + `:12:13: models.demo.scaling.cooldown: invalid duration "2d": must be from "1s" to "1d"`,
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("no line starts with\n%s\ngot:\n%s", w, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(got), len(want), err)
	}
}
