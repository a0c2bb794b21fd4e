// Package deb holds the deb and rpm packaging: nfpm.yaml, the default
// config, the maintainer scripts; its test builds and installs them.
package deb

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The contract the README states: the installed config serves here.
const serveAddr = "127.0.0.1:8080"

// need returns the path of a tool the test cannot run without. In CI a
// missing one fails the test (.ci/run installs them); elsewhere it skips.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; .ci/run installs it", tool)
		}
		t.Skipf("%s is missing", tool)
	}
	return p
}

// sh runs a command and fails the test with its output if it fails.
func sh(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cleanEnv is the environment of the installed commands: no
// ONNXRUNTIME_LIB (the Makefile exports one pointing at build/), so they
// find the library where the package put it.
func cleanEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8"}
}

// lock serialises this test across processes: it installs a package on
// the machine, which two runs at once would trample.
func lock(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/run/lock/aiassist-package-test.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	deadline := time.Now().Add(5 * time.Minute)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			t.Fatal("another run of TestPackage held /run/lock/aiassist-package-test.lock for 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// packageState is dpkg's status of the aiassist package, "" when unknown.
func packageState() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "aiassist").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// listed returns every path on the machine's system folders whose name
// holds "aiassist": what the package, its scripts, dpkg and systemd's
// helpers could leave behind.
func listed(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, root := range []string{"/etc", "/usr/bin", "/usr/lib", "/usr/share", "/usr/sbin", "/var/lib", "/var/log", "/var/cache", "/run"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // vanished or unreadable: not ours
			}
			if d.IsDir() && (p == "/usr/lib/go" || p == "/run/lock" || strings.HasPrefix(p, "/run/user")) {
				return filepath.SkipDir
			}
			if strings.Contains(p, "aiassist") {
				out = append(out, p)
			}
			return nil
		})
	}
	slices.Sort(out)
	return out
}

// added returns the paths of after that are not in before.
func added(before, after []string) []string {
	var out []string
	for _, p := range after {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	return out
}

// waitPortFree waits until nothing listens on serveAddr.
func waitPortFree(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := net.Listen("tcp", serveAddr)
		if err == nil {
			l.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed busy for 60s: the installed config serves there (the README's address); stop whatever listens on it: %v", serveAddr, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestPackage builds the .deb and .rpm with `make package`, checks them
// with lintian and rpm, installs the .deb on this machine, serves the
// bundled models as the unit would, upgrades over a locally edited
// conffile, then removes and purges it and checks what is left. It needs
// root, dpkg, lintian, rpm and systemd-analyze; CI has them all.
func TestPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestPackage installs a package: CI runs the tests as root")
		}
		t.Skip("not root")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "lintian", "rpm", "systemd-analyze", "setpriv", "make"} {
		need(t, tool)
	}
	lock(t)
	if s := packageState(); s != "" && !strings.HasPrefix(s, "un") && !strings.HasPrefix(s, "pn") {
		t.Fatalf("the aiassist package is on this machine already (%s); the test installs and purges it: run dpkg -P aiassist first", s)
	}
	t.Cleanup(func() {
		if s := packageState(); s != "" && !strings.HasPrefix(s, "un") && !strings.HasPrefix(s, "pn") {
			if out, err := exec.Command("dpkg", "--purge", "aiassist").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge aiassist: %v\n%s", err, out)
			}
		}
	})

	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out1, out2 := t.TempDir(), t.TempDir()
	sh(t, root, os.Environ(), "make", "-s", "package", "PKG_OUT="+out1)
	debs, _ := filepath.Glob(filepath.Join(out1, "aiassist_*_amd64.deb"))
	rpms, _ := filepath.Glob(filepath.Join(out1, "aiassist-*.x86_64.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("make package made %q and %q, want one aiassist_*_amd64.deb and one aiassist-*.x86_64.rpm", debs, rpms)
	}
	deb, rpm := debs[0], rpms[0]
	version := strings.TrimSpace(sh(t, "/", nil, "dpkg-deb", "-f", deb, "Version"))
	upstream, release, ok := strings.Cut(version, "-")
	if !ok || release != "1" {
		t.Fatalf("the .deb's version %q is not UPSTREAM-1", version)
	}
	// The same tree rebuilt as a newer package: the next Debian revision.
	sh(t, root, os.Environ(), "make", "-s", "package", "PKG_OUT="+out2, "PKG_FORMATS=deb", "PKG_RELEASE=2", "PKG_VERSION="+upstream)
	debs, _ = filepath.Glob(filepath.Join(out2, "aiassist_*-2_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("the rebuild made %q, want one aiassist_*-2_amd64.deb", debs)
	}
	deb2 := debs[0]

	control := sh(t, "/", nil, "dpkg-deb", "-f", deb)
	t.Logf("control:\n%s", control)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Depends: .*\blibc6 \(>= 2\.[0-9]+\)`),
		regexp.MustCompile(`(?m)^Depends: .*\blibstdc\+\+6 \(>= [0-9.]+\)`),
		regexp.MustCompile(`(?m)^Architecture: amd64$`),
	} {
		if !want.MatchString(control) {
			t.Errorf("the .deb's control has no line matching %s", want)
		}
	}

	t.Run("rpm", func(t *testing.T) {
		files := sh(t, "/", nil, "rpm", "-qpl", rpm)
		for _, want := range []string{"/usr/bin/aiassistd", "/etc/aiassist/config.cue", "/usr/lib/aiassist/libonnxruntime.so.1",
			"/usr/lib/systemd/system/aiassist.service", "/usr/lib/systemd/system/aiassist.socket", "/usr/lib/sysusers.d/aiassist.conf",
			"/usr/lib/tmpfiles.d/aiassist.conf", "/usr/share/aiassist/models/demo-mlp/model.onnx", "/usr/share/aiassist/examples/secure.cue",
			"/usr/share/aiassist/grafana/aiassist.json", "/usr/share/aiassist/prometheus/aiassist.rules.yml",
			"/usr/share/man/man8/aiassistd.8.gz", "/usr/share/doc/aiassist/copyright"} {
			if !slices.Contains(strings.Split(files, "\n"), want) {
				t.Errorf("rpm -qpl does not list %s:\n%s", want, files)
			}
		}
		if got := strings.TrimSpace(sh(t, "/", nil, "rpm", "-qpc", rpm)); got != "/etc/aiassist/config.cue" {
			t.Errorf("rpm -qpc = %q, want the one conffile /etc/aiassist/config.cue", got)
		}
		requires := sh(t, "/", nil, "rpm", "-qpR", rpm)
		if !regexp.MustCompile(`(?m)^glibc >= 2\.[0-9]+$`).MatchString(requires) || !strings.Contains(requires, "systemd") {
			t.Errorf("rpm -qpR lacks glibc >= 2.x or systemd:\n%s", requires)
		}
		scripts := sh(t, "/", nil, "rpm", "-qp", "--scripts", rpm)
		for _, want := range []string{"systemd-sysusers aiassist.conf", "systemctl --no-reload enable aiassist.service", "disable --now", "try-restart"} {
			if !strings.Contains(scripts, want) {
				t.Errorf("the rpm's scripts lack %q:\n%s", want, scripts)
			}
		}
	})

	// lintian reads only the .deb: it runs while the package is tried out.
	// binaries/spelling is left out: it only finds info-level typos in
	// ONNX Runtime's strings (overridden) and is a third of lintian's time.
	lintian := exec.Command("lintian", "--pedantic", "--display-info", "-X", "binaries/spelling", deb)
	var lintOut bytes.Buffer
	lintian.Stdout, lintian.Stderr = &lintOut, &lintOut
	if err := lintian.Start(); err != nil {
		t.Fatal(err)
	}
	lintDone := make(chan error, 1)
	go func() { lintDone <- lintian.Wait() }()
	t.Cleanup(func() {
		lintian.Process.Kill()
		<-lintDone
	})

	before := listed(t)
	t.Logf("before install: %q", before)
	t.Logf("dpkg -i:\n%s", sh(t, "/", cleanEnv(), "dpkg", "-i", deb))

	t.Run("installed", func(t *testing.T) {
		checkOut := sh(t, "/", cleanEnv(), "/usr/bin/aiassistd", "check", "-config", "/etc/aiassist/config.cue")
		if !strings.Contains(checkOut, "ok") {
			t.Errorf("aiassistd check: %s", checkOut)
		}
		ver := sh(t, "/", cleanEnv(), "/usr/bin/aiassistd", "version")
		t.Logf("aiassistd version:\n%s", ver)
		ortVersion, _ := os.ReadFile(filepath.Join(root, "build", "onnxruntime", ".version"))
		want := "onnxruntime " + strings.Fields(string(ortVersion) + " ?")[0] + " (/usr/lib/aiassist/"
		if !strings.Contains(ver, want) {
			t.Errorf("aiassistd version does not say %q", want)
		}
		copyrightFile(t, strings.Fields(string(ortVersion) + " ?")[0])
		u, err := user.Lookup("aiassist")
		if err != nil {
			t.Fatalf("the user aiassist: %v", err)
		}
		for _, dir := range []string{"/var/lib/aiassist", "/var/log/aiassist", "/run/aiassist"} {
			st, err := os.Stat(dir)
			if err != nil {
				t.Errorf("%s: %v", dir, err)
				continue
			}
			if uid := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)); uid != u.Uid {
				t.Errorf("%s is owned by uid %s, want aiassist (%s)", dir, uid, u.Uid)
			}
		}
		if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/aiassist.service"); err != nil {
			t.Errorf("aiassist.service is not enabled: %v", err)
		}
		units := []string{"/usr/lib/systemd/system/aiassist.service", "/usr/lib/systemd/system/aiassist.socket"}
		if out := sh(t, "/", cleanEnv(), "systemd-analyze", append([]string{"verify"}, units...)...); out != "" {
			t.Errorf("systemd-analyze verify printed:\n%s", out)
		}
		sec := sh(t, "/", cleanEnv(), "systemd-analyze", "security", "--offline=true", units[0])
		m := regexp.MustCompile(`Overall exposure level for aiassist\.service: ([0-9.]+)`).FindStringSubmatch(sec)
		if m == nil {
			t.Fatalf("systemd-analyze security printed no exposure level:\n%s", sec)
		}
		t.Logf("systemd-analyze security --offline=true: exposure %s", m[1])
		if score, _ := strconv.ParseFloat(m[1], 64); score > 2.0 {
			t.Errorf("exposure %s, above 2.0:\n%s", m[1], sec)
		}
		serve(t, u)
	})

	t.Run("upgrade keeps the edited conffile", func(t *testing.T) {
		const edit = "\n// edited on this machine\n"
		f, err := os.OpenFile("/etc/aiassist/config.cue", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(edit)
		f.Close()
		t.Logf("dpkg -i (upgrade):\n%s", sh(t, "/", cleanEnv(), "dpkg", "-i", deb2))
		if v := strings.TrimSpace(sh(t, "/", nil, "dpkg-query", "-W", "-f", "${Version}", "aiassist")); v != upstream+"-2" {
			t.Errorf("installed version %s after the upgrade, want %s-2", v, upstream)
		}
		b, err := os.ReadFile("/etc/aiassist/config.cue")
		if err != nil || !strings.HasSuffix(string(b), edit) {
			t.Errorf("the upgrade replaced the edited /etc/aiassist/config.cue (err %v)", err)
		}
		sh(t, "/", cleanEnv(), "/usr/bin/aiassistd", "check", "-config", "/etc/aiassist/config.cue")
	})

	t.Logf("dpkg -r:\n%s", sh(t, "/", cleanEnv(), "dpkg", "-r", "aiassist"))
	afterRemove := added(before, listed(t))
	t.Logf("left after dpkg -r: %q", afterRemove)
	// What Debian policy lets a removed package keep until it is purged:
	// its conffiles, its state, dpkg's record of them.
	allowed := regexp.MustCompile(`^(/etc/aiassist(/config\.cue)?|/var/lib/aiassist(/.*)?|/var/log/aiassist(/.*)?|/run/aiassist|/var/lib/dpkg/info/aiassist\.[a-z]+)$`)
	for _, p := range afterRemove {
		if !allowed.MatchString(p) {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	if !slices.Contains(afterRemove, "/etc/aiassist/config.cue") {
		t.Errorf("dpkg -r removed the conffile /etc/aiassist/config.cue; only a purge may")
	}
	// Installed again over what the removal kept: enabled as at first,
	// the edited conffile kept. Then purged from installed.
	sh(t, "/", cleanEnv(), "dpkg", "-i", deb2)
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/aiassist.service"); err != nil {
		t.Errorf("aiassist.service is not enabled when installed again after dpkg -r: %v", err)
	}
	if b, err := os.ReadFile("/etc/aiassist/config.cue"); err != nil || !strings.Contains(string(b), "// edited on this machine") {
		t.Errorf("installing again after dpkg -r replaced the edited conffile (err %v)", err)
	}
	t.Logf("dpkg -P:\n%s", sh(t, "/", cleanEnv(), "dpkg", "-P", "aiassist"))
	if left := added(before, listed(t)); len(left) > 0 {
		t.Errorf("dpkg -P left %q", left)
	}
	if _, err := user.Lookup("aiassist"); err == nil {
		t.Logf("the user aiassist stays after the purge, as Debian policy has it")
	}

	t.Run("lintian", func(t *testing.T) {
		var err error
		select {
		case err = <-lintDone:
			lintDone <- err // for the cleanup
		case <-time.After(5 * time.Minute):
			t.Fatal("lintian ran for 5 minutes")
		}
		out := lintOut.Bytes()
		t.Logf("lintian --pedantic:\n%s", out)
		var tags []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
				tags = append(tags, line)
			}
		}
		if len(tags) > 0 || err != nil {
			t.Errorf("lintian: %v; fix or override (packaging/deb/lintian-overrides, with a reason) each of:\n%s", err, strings.Join(tags, "\n"))
		}
	})
}

// serve runs the daemon as the installed unit's ExecStart says, as the
// user aiassist, and asks both bundled models.
func serve(t *testing.T, u *user.User) {
	t.Helper()
	unit, err := os.Open("/usr/lib/systemd/system/aiassist.service")
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	sc := bufio.NewScanner(unit)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	unit.Close()
	if len(execStart) == 0 {
		t.Fatal("the installed unit has no ExecStart")
	}
	waitPortFree(t)
	args := append([]string{"--reuid=aiassist", "--regid=aiassist", "--init-groups", "--no-new-privs", "--"}, execStart...)
	cmd := exec.Command("setpriv", args...)
	cmd.Dir = "/"
	cmd.Env = cleanEnv()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the daemon did not exit 0 on SIGTERM: %v", err)
			}
		case <-time.After(45 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("the daemon did not stop within 45s of SIGTERM")
		}
		t.Logf("daemon log:\n%s", logs.String())
	}()

	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get("http://" + serveAddr + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the daemon exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon was not ready on %s within 60s (last: %v)", serveAddr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(status); m == nil || string(m[1]) != u.Uid {
		t.Errorf("the daemon runs as uid %s, want aiassist (%s)", m, u.Uid)
	}

	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := client.Post("http://"+serveAddr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d, %v %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	infer := post("/v2/models/demo-mlp/infer", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	outputs, _ := infer["outputs"].([]any)
	if len(outputs) != 1 {
		t.Fatalf("demo-mlp answered %v", infer)
	}
	// The README's answer of demo-mlp to [1,2,3,4].
	data, _ := outputs[0].(map[string]any)["data"].([]any)
	if len(data) != 3 || fmt.Sprintf("%.5f", data[0]) != "0.32945" {
		t.Errorf("demo-mlp answered %v, want [0.32945338 -0.132892 0.21754086]", data)
	}
	gen := post("/v1/generate", `{"prompt":"Hello","max_tokens":4,"temperature":0}`)
	if gen["model"] != "tiny-llama" || gen["text"] == nil {
		t.Errorf("/v1/generate answered %v", gen)
	}
	// The admin socket of the installed config, in /run/aiassist.
	reload := exec.Command("/usr/bin/aiassistd", "reload")
	reload.Env = cleanEnv()
	if out, err := reload.CombinedOutput(); err != nil {
		t.Errorf("aiassistd reload: %v\n%s", err, out)
	}
}

// copyrightFile checks the installed copyright file: deb822 paragraphs,
// a Files paragraph with its license for ONNX Runtime and for every Go
// module compiled into the installed binary.
func copyrightFile(t *testing.T, ortVersion string) {
	t.Helper()
	b, err := os.ReadFile("/usr/share/doc/aiassist/copyright")
	if err != nil {
		t.Fatal(err)
	}
	paras := strings.Split(strings.TrimRight(string(b), "\n"), "\n\n")
	if !strings.HasPrefix(paras[0], "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/") {
		t.Errorf("the copyright file is not in the machine-readable format:\n%s", paras[0])
	}
	files := map[string]string{}
	for _, p := range paras[1:] {
		first, _, _ := strings.Cut(p, "\n")
		f, ok := strings.CutPrefix(first, "Files: ")
		if !ok || !strings.Contains(p, "\nCopyright: ") || !strings.Contains(p, "\nLicense: ") {
			t.Errorf("a paragraph of the copyright file lacks Files, Copyright or License:\n%.300s", p)
			continue
		}
		files[f] = p
	}
	if p := files["usr/lib/aiassist/*"]; !strings.Contains(p, "ONNX Runtime "+ortVersion) || !strings.Contains(p, "License: MIT") {
		t.Errorf("the copyright file does not give ONNX Runtime %s and its MIT license:\n%s", ortVersion, p)
	}
	info, err := buildinfo.ReadFile("/usr/bin/aiassistd")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) < 5 {
		t.Fatalf("/usr/bin/aiassistd lists %d Go modules", len(info.Deps))
	}
	for _, d := range info.Deps {
		if p, ok := files["vendor/"+d.Path+"/*"]; !ok || !strings.Contains(p, d.Version) {
			t.Errorf("the copyright file has no paragraph for %s %s", d.Path, d.Version)
		}
	}
}
