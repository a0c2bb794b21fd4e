package daemon_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// notifySocket is a fake systemd: a unixgram socket that collects the
// daemon's sd_notify messages.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := &notifySocket{path: path, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// next returns the next message that is not WATCHDOG=1, and counts the
// watchdog messages before it.
func (n *notifySocket) next(t *testing.T, p *proc, watchdogs *int) string {
	t.Helper()
	for {
		select {
		case m := <-n.msgs:
			if m == "WATCHDOG=1" {
				*watchdogs++
				continue
			}
			return m
		case <-p.done:
			// The process may have sent its last message just before it
			// exited.
			select {
			case m := <-n.msgs:
				if m != "WATCHDOG=1" {
					return m
				}
			default:
			}
			t.Fatalf("aiassistd exited (%v) before sending the next message", p.err)
		case <-time.After(time.Minute):
			t.Fatal("no sd_notify message")
		}
	}
}

// expect checks a message against a pattern, and a MONOTONIC_USEC in it
// against CLOCK_MONOTONIC now: systemd 253+ rejects a reload whose
// timestamp is from the future.
func expect(t *testing.T, got, pattern string) {
	t.Helper()
	if !regexp.MustCompile(`^` + pattern + `$`).MatchString(got) {
		t.Errorf("sd_notify message:\n got %q\nwant %q", got, pattern)
		return
	}
	if m := regexp.MustCompile(`MONOTONIC_USEC=(\d+)`).FindStringSubmatch(got); m != nil {
		usec, _ := strconv.ParseInt(m[1], 10, 64)
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		if usec <= 0 || usec > ts.Nano()/1000 {
			t.Errorf("MONOTONIC_USEC=%d is not a CLOCK_MONOTONIC time before now (%d)", usec, ts.Nano()/1000)
		}
	}
}

// TestNotify runs aiassistd under a fake NOTIFY_SOCKET with a watchdog
// and checks the exact messages, in order, for start, a reload by SIGHUP,
// a reload by `aiassistd reload`, a failed reload, and stop.
func TestNotify(t *testing.T) {
	requireBinary(t)
	n := listenNotify(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	sock := filepath.Join(dir, "admin.sock")
	cfg := filepath.Join(dir, "config.cue")
	render := func(timeout string) string {
		return fmt.Sprintf(`listeners: [{port: %d}]
reload: {watch: false, admin_socket: %q}
server: request_timeout: %q
models: demo: {kind: "tensor", path: "demo.onnx"}
`, port, sock, timeout)
	}
	writeConfig(t, cfg, render("30s"))
	// 200ms: a WATCHDOG=1 every 100ms, so the test sees some quickly.
	p := start(t, cfg, "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=200000")
	watchdogs := 0

	expect(t, n.next(t, p, &watchdogs), `READY=1\nSTATUS=serving generation 1 \(1 models\)`)
	// The watchdog pings only after its self-check, which goes through
	// the listener, passes.
	for range 2 {
		select {
		case m := <-n.msgs:
			if m != "WATCHDOG=1" {
				t.Fatalf("message %q, want WATCHDOG=1", m)
			}
		case <-time.After(time.Minute):
			t.Fatal("no WATCHDOG=1")
		}
	}

	writeConfig(t, cfg, render("20s"))
	p.signal(syscall.SIGHUP)
	expect(t, n.next(t, p, &watchdogs), `RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading \(SIGHUP\)`)
	expect(t, n.next(t, p, &watchdogs), `READY=1\nSTATUS=serving generation 2 \(1 models\)`)

	writeConfig(t, cfg, render("10s"))
	out, err := exec.Command(binary, "reload", "-config", cfg).CombinedOutput()
	if err != nil || string(out) != "reload: success, serving generation 3\n" {
		t.Errorf("aiassistd reload: %v\n%s", err, out)
	}
	expect(t, n.next(t, p, &watchdogs), `RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading \(admin\)`)
	expect(t, n.next(t, p, &watchdogs), `READY=1\nSTATUS=serving generation 3 \(1 models\)`)

	// A failed reload is still followed by READY=1; the status says why,
	// with the position in the file.
	writeConfig(t, cfg, render("10s")+"server: read_timeout: \"soon\"\n")
	p.signal(syscall.SIGHUP)
	expect(t, n.next(t, p, &watchdogs), `RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading \(SIGHUP\)`)
	expect(t, n.next(t, p, &watchdogs), `READY=1\nSTATUS=serving generation 3 \(1 models\); last reload failed: `+
		regexp.QuoteMeta(cfg)+`:5:23: server.read_timeout: invalid duration "soon": .*`)
	out, err = exec.Command(binary, "reload", "-config", cfg, "-socket", sock).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "serves generation 3 as before") || !strings.Contains(string(out), "config.cue:5:23") {
		t.Errorf("aiassistd reload of an invalid file: %v\n%s", err, out)
	}
	expect(t, n.next(t, p, &watchdogs), `RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading \(admin\)`)
	expect(t, n.next(t, p, &watchdogs), `READY=1\nSTATUS=serving generation 3 \(1 models\); last reload failed: .*`)

	p.signal(syscall.SIGTERM)
	expect(t, n.next(t, p, &watchdogs), `STOPPING=1\nSTATUS=stopping`)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	select {
	case m := <-n.msgs:
		if m != "WATCHDOG=1" {
			t.Errorf("message after STOPPING=1: %q", m)
		}
	default:
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind: %v", err)
	}
}

// TestStopFinishesRequest sends SIGTERM while a request is in flight and
// checks that the request completes and the process exits 0.
//
// The request is held in flight by the batching queue: with a
// max_queue_delay of 2s a lone request waits for its batch to fill, and
// the queue depth metric shows when it is waiting, so the test needs no
// sleep. Once text generation streams, slowRequest can read an SSE stream
// instead; the rest of the test stays as it is.
func TestStopFinishesRequest(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{port: %d}]
server: shutdown_grace: "1m"
models: demo: {kind: "tensor", path: "demo.onnx", batching: max_queue_delay: "2s"}
`, port))
	p := start(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get(base + "/v2/health/ready"); return code == 200 })

	// A full batch first: the queue then holds the next single request
	// for max_queue_delay, waiting for company.
	full := `{"inputs":[{"name":"input","shape":[32,4],"datatype":"FP32","data":[` + strings.Repeat("0,", 127) + `0]}]}`
	if resp, err := p.client.Post(base+"/v2/models/demo/infer", "application/json", strings.NewReader(full)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	done := make(chan error, 1)
	go func() { done <- slowRequest(p, port) }()
	p.until("the request to be queued", func() bool {
		return p.metrics(port)[`aiassist_queue_depth{model="demo"}`] == 1
	})
	p.signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Errorf("request in flight at SIGTERM: %v", err)
	}
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if log := p.log.String(); !strings.Contains(log, `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log")
	}
}

// slowRequest makes one request that stays in flight for a while and
// checks its answer.
func slowRequest(p *proc, port int) error {
	return infer(context.Background(), p.client, port, "demo")
}

// TestWatchConfigMap swaps the config the way Kubernetes updates a
// mounted ConfigMap, by re-pointing the ..data symlink, and checks that
// the daemon reloads without a signal.
func TestWatchConfigMap(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	mount := filepath.Join(dir, "config")
	version := func(name, extra string) {
		t.Helper()
		d := filepath.Join(mount, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		src := fmt.Sprintf("listeners: [{port: %d}]\nmodels: demo: {kind: \"tensor\", path: %q}\n%s", port, filepath.Join(dir, "demo.onnx"), extra)
		if err := os.WriteFile(filepath.Join(d, "config.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(mount, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01_01_00_00_00.1", "")
	if err := os.Symlink("..data/config.cue", filepath.Join(mount, "config.cue")); err != nil {
		t.Fatal(err)
	}
	p := start(t, filepath.Join(mount, "config.cue"))
	p.until("readiness", func() bool { return p.metrics(port)["aiassist_config_generation"] == 1 })
	version("..2026_01_01_00_00_00.2", "models: second: {kind: \"tensor\", path: \"../demo.onnx\"}\n")
	p.until("generation 2", func() bool { return p.metrics(port)["aiassist_config_generation"] == 2 })
	if code, _, _ := p.get(fmt.Sprintf("http://127.0.0.1:%d/v2/models/second/ready", port)); code != 200 {
		t.Errorf("model of the new ConfigMap version: status %d", code)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestSocketActivation passes a listening socket the way systemd does
// (LISTEN_FDS, LISTEN_PID, fd 3) and checks that the daemon serves it, uses
// it for the config's listener at the same address instead of binding
// again, and keeps it open when a reload drops that listener.
func TestSocketActivation(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	passed := ln.Addr().(*net.TCPAddr).Port
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	defer f.Close()
	other := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	render := func(ports ...int) string {
		var ls []string
		for _, p := range ports {
			ls = append(ls, fmt.Sprintf("{port: %d}", p))
		}
		return fmt.Sprintf("listeners: [%s]\nreload: watch: false\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n", strings.Join(ls, ", "))
	}
	writeConfig(t, cfg, render(passed, other))

	requireBinary(t)
	p := &proc{t: t, log: &syncBuffer{}, done: make(chan struct{}), client: &http.Client{Timeout: time.Minute}}
	// systemd sets LISTEN_PID to the service's pid; exec keeps the
	// shell's.
	p.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" serve -config "$1"`, binary, cfg)
	p.cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB="+ortLib, "LISTEN_FDS=1")
	p.cmd.ExtraFiles = []*os.File{f}
	p.cmd.Stderr, p.cmd.Stdout = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("aiassistd log:\n%s", p.log.String())
		}
	})
	p.until("generation 1", func() bool { return p.metrics(other)["aiassist_config_generation"] == 1 })
	if err := infer(context.Background(), p.client, passed, "demo"); err != nil {
		t.Errorf("passed socket: %v", err)
	}
	writeConfig(t, cfg, render(other))
	p.signal(syscall.SIGHUP)
	p.until("generation 2", func() bool { return p.metrics(other)["aiassist_config_generation"] == 2 })
	if err := infer(context.Background(), p.client, passed, "demo"); err != nil {
		t.Errorf("passed socket after a reload that dropped its listener: %v", err)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !strings.Contains(p.log.String(), "using a socket passed by systemd") {
		t.Errorf("the log does not say it uses the passed socket")
	}
}
