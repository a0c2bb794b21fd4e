package daemon_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnits runs `systemd-analyze verify` on the units in
// ../systemd, with the binary path pointed at the test's build, and
// fails on any warning about them: systemd ignores a line it cannot parse
// and still exits 0.
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing; CI installs systemd")
		}
		t.Skip("systemd-analyze is missing")
	}
	requireBinary(t)
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"aiassist.service", "aiassist.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/bin/aiassistd", binary)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "aiassist.") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// TestServiceSettings checks the settings of aiassist.service that the
// daemon's behaviour depends on.
func TestServiceSettings(t *testing.T) {
	b, err := os.ReadFile("../systemd/aiassist.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	f := func(key, want string) {
		t.Helper()
		for _, v := range settings[key] {
			if v == want {
				return
			}
		}
		t.Errorf("%s=%s missing; have %q", key, want, settings[key])
	}
	f("Type", "notify")
	f("ExecReload", "/bin/kill -HUP $MAINPID")
	f("ExecStartPre", "/usr/bin/aiassistd check -config /etc/aiassist/config.cue")
	f("NoNewPrivileges", "yes")
	f("ProtectSystem", "strict")
	f("ProtectHome", "yes")
	f("PrivateTmp", "yes")
	f("CapabilityBoundingSet", "")
	f("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")
	f("SystemCallFilter", "@system-service")
	f("MemoryDenyWriteExecute", "yes")
	if len(settings["WatchdogSec"]) != 1 || len(settings["LimitNOFILE"]) != 1 {
		t.Errorf("WatchdogSec and LimitNOFILE must be set once")
	}
	// Stopping must outlast server.shutdown_grace, whose default is 30s.
	stop, err := time.ParseDuration(strings.Join(settings["TimeoutStopSec"], ""))
	if err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%v must be above the default shutdown_grace of 30s", settings["TimeoutStopSec"])
	}
}
