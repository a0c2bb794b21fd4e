package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTools writes stand-ins for the commands the maintainer scripts run:
// each logs its name and arguments; aiassistd check exits with
// checkExit.
func fakeTools(t *testing.T, checkExit string) (bin, log string) {
	t.Helper()
	bin = t.TempDir()
	log = filepath.Join(bin, "calls.log")
	for _, name := range []string{"systemd-sysusers", "systemd-tmpfiles", "deb-systemd-helper", "deb-systemd-invoke", "systemctl", "aiassistd"} {
		script := "#!/bin/sh\necho \"" + name + " $*\" >>" + log + "\n"
		if name == "aiassistd" {
			script += "exit " + checkExit + "\n"
		}
		if name == "deb-systemd-helper" {
			// was-enabled: true, as on a first install.
			script += "exit 0\n"
		}
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, log
}

// runScript runs a maintainer script with the fake tools first on PATH.
// With systemd true it runs in a private mount namespace whose /run holds
// /run/systemd/system, so the script believes systemd is PID 1 while the
// machine (CI, containers) sees nothing of it.
func runScript(t *testing.T, script string, systemd bool, checkExit string, args ...string) (calls, stderr string) {
	t.Helper()
	bin, log := fakeTools(t, checkExit)
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if systemd {
		inner := `mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec sh "$0" "$@"`
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", inner, abs}, args...)...)
	} else {
		cmd = exec.Command("sh", append([]string{abs}, args...)...)
	}
	cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("%s %q: %v\n%s%s", script, args, err, out, errOut.String())
	}
	b, _ := os.ReadFile(log)
	return string(b), errOut.String()
}

// TestMaintainerScripts runs the deb's and rpm's scripts against logging
// stand-ins, with and without a running systemd: the service starts only
// if its config passes aiassistd check, an upgrade restarts only a running
// one, removal stops and disables, and without systemd nothing is invoked.
func TestMaintainerScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestMaintainerScripts needs root for a private mount namespace: CI runs the tests as root")
		}
		t.Skip("not root")
	}
	need(t, "unshare")
	type want struct{ has, hasNot []string }
	for _, tc := range []struct {
		name, script string
		systemd      bool
		check        string
		args         []string
		want
	}{
		{"deb install", "scripts/postinst", true, "0", []string{"configure", ""},
			want{[]string{"systemd-sysusers aiassist.conf", "systemd-tmpfiles --create aiassist.conf", "deb-systemd-helper enable aiassist.service",
				"aiassistd check -config /etc/aiassist/config.cue", "deb-systemd-invoke start aiassist.service"}, []string{"try-restart"}}},
		{"deb install, bad config", "scripts/postinst", true, "1", []string{"configure", ""},
			want{[]string{"deb-systemd-helper enable aiassist.service", "aiassistd check"}, []string{"deb-systemd-invoke"}}},
		{"deb upgrade", "scripts/postinst", true, "0", []string{"configure", "0.0.0+git1.gabc-1"},
			want{[]string{"deb-systemd-invoke try-restart aiassist.service"}, []string{"deb-systemd-invoke start"}}},
		{"deb upgrade, bad config", "scripts/postinst", true, "1", []string{"configure", "0.0.0+git1.gabc-1"},
			want{[]string{"aiassistd check"}, []string{"deb-systemd-invoke"}}},
		{"deb install, no systemd", "scripts/postinst", false, "0", []string{"configure", ""},
			want{[]string{"systemd-sysusers aiassist.conf", "deb-systemd-helper enable aiassist.service"}, []string{"deb-systemd-invoke", "systemctl"}}},
		{"deb remove", "scripts/prerm", true, "0", []string{"remove"},
			want{[]string{"deb-systemd-invoke stop aiassist.socket aiassist.service"}, nil}},
		{"deb remove, no systemd", "scripts/prerm", false, "0", []string{"remove"},
			want{nil, []string{"deb-systemd-invoke"}}},
		{"deb upgrade's prerm", "scripts/prerm", true, "0", []string{"upgrade", "0.0.0+git2.gdef-1"},
			want{nil, []string{"deb-systemd-invoke"}}},
		{"deb removed", "scripts/postrm", false, "0", []string{"remove"},
			want{[]string{"deb-systemd-helper purge aiassist.service aiassist.socket"}, nil}},
		{"rpm install", "scripts/rpm-post", true, "0", []string{"1"},
			want{[]string{"systemd-sysusers aiassist.conf", "systemctl --no-reload enable aiassist.service", "systemctl start aiassist.service"}, nil}},
		{"rpm install, bad config", "scripts/rpm-post", true, "1", []string{"1"},
			want{[]string{"systemctl --no-reload enable aiassist.service"}, []string{"systemctl start"}}},
		{"rpm install, no systemd", "scripts/rpm-post", false, "0", []string{"1"},
			want{[]string{"systemctl --no-reload enable aiassist.service"}, []string{"systemctl start", "daemon-reload"}}},
		{"rpm upgrade", "scripts/rpm-post", true, "0", []string{"2"},
			want{nil, []string{"enable", "systemctl start"}}},
		{"rpm erase", "scripts/rpm-preun", true, "0", []string{"0"},
			want{[]string{"systemctl --no-reload disable --now aiassist.service aiassist.socket"}, nil}},
		{"rpm upgrade's preun", "scripts/rpm-preun", true, "0", []string{"1"},
			want{nil, []string{"disable"}}},
		{"rpm upgraded", "scripts/rpm-postun", true, "0", []string{"1"},
			want{[]string{"systemctl try-restart aiassist.service"}, nil}},
		{"rpm upgraded, bad config", "scripts/rpm-postun", true, "1", []string{"1"},
			want{nil, []string{"try-restart"}}},
		{"rpm erased", "scripts/rpm-postun", true, "0", []string{"0"},
			want{nil, []string{"try-restart"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, stderr := runScript(t, tc.script, tc.systemd, tc.check, tc.args...)
			for _, w := range tc.has {
				if !strings.Contains(calls, w) {
					t.Errorf("no %q among the calls:\n%s", w, calls)
				}
			}
			for _, w := range tc.hasNot {
				if strings.Contains(calls, w) {
					t.Errorf("%q among the calls:\n%s", w, calls)
				}
			}
			if tc.check == "1" && tc.systemd && !strings.Contains(stderr, "does not pass 'aiassistd check'") && strings.Contains(tc.script, "post") && !strings.Contains(tc.script, "postun") {
				t.Errorf("a config that fails the check is not reported: stderr %q", stderr)
			}
		})
	}
}
