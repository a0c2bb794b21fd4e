package daemon_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssBytes reads a process's resident set size from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestPromisedBodiesCostWhatArrives opens 200 connections that each send
// headers promising a 16 MiB body and then 100 bytes of it. The daemon
// must hold memory for the bytes received, not for the bytes promised
// (fasthttp allocates the whole Content-Length up front unless the body
// is streamed: 1.7 GB for this).
func TestPromisedBodiesCostWhatArrives(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{port: %d}]
logging: access_log: false
server: {max_body_bytes: %d, read_timeout: "60s"}
models: demo: {kind: "tensor", path: "demo.onnx"}
`, port, 32<<20))
	p := start(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get("http://" + addr + "/v2/health/ready"); return code == 200 })
	before := rssBytes(t, p.cmd.Process.Pid)

	const conns = 200
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	head := fmt.Sprintf("POST /v2/models/demo/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 16<<20)
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(head + strings.Repeat(" ", 100))); err != nil {
			t.Fatal(err)
		}
	}
	// Let the daemon read what was sent; then its memory is what it is.
	p.until("all connections open", func() bool {
		return p.metrics(port)["aiassist_http_connections_open"] >= conns
	})
	time.Sleep(500 * time.Millisecond)
	after := rssBytes(t, p.cmd.Process.Pid)
	grew := after - before
	t.Logf("RSS %d MiB before, %d MiB with %d connections promising 16 MiB each (+%d MiB)", before>>20, after>>20, conns, grew>>20)
	if grew >= 64<<20 {
		t.Errorf("RSS grew by %d MiB for %d connections that sent 100 body bytes each; want < 64 MiB", grew>>20, conns)
	}
	// And the daemon still serves.
	if code, _, err := p.get("http://" + addr + "/v2/health/ready"); err != nil || code != 200 {
		t.Errorf("readiness during the test: %d %v", code, err)
	}
}

// TestSlowHeadersTimeOut: a client that drips its headers is answered 408
// with a JSON error once server.header_timeout passes, however long the
// body's read_timeout is (slowloris).
func TestSlowHeadersTimeOut(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf("listeners: [{port: %d}]\nserver: {header_timeout: \"500ms\", read_timeout: \"60s\"}\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n", port))
	p := start(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get("http://" + addr + "/v2/health/ready"); return code == 200 })
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("POST /v2/models/demo/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 408") || !strings.Contains(string(got), `"code":"request_timeout"`) {
		t.Errorf("a client that never finished its headers got %q", got)
	}
}

// TestDescriptorFlood opens more idle connections from one address than
// the process may have file descriptors (RLIMIT_NOFILE 400). The daemon
// sheds them before it runs out — accept never fails with EMFILE — and a
// client from another address still gets /metrics and an inference.
func TestDescriptorFlood(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	port := freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf("listeners: [{port: %d}]\nlogging: access_log: false\nserver: max_connections_per_ip: 200\nmodels: demo: {kind: \"tensor\", path: \"demo.onnx\"}\n", port))
	p := &proc{t: t, log: &syncBuffer{}, done: make(chan struct{}), client: &http.Client{Timeout: time.Minute}}
	p.cmd = exec.Command("/bin/sh", "-c", `ulimit -n 400 && exec "$0" serve -config "$1"`, binary, cfg)
	p.cmd.Env = append(os.Environ(), "ONNXRUNTIME_LIB="+ortLib)
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
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p.until("readiness", func() bool { code, _, _ := p.get("http://" + addr + "/v2/health/ready"); return code == 200 })
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 500 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			break // the test process's own descriptors
		}
		flood = append(flood, c)
	}
	p.until("the flood accepted or shed", func() bool {
		m := p.metrics(port)
		return m["aiassist_http_connections_open"] >= 100 && m[`aiassist_http_connections_refused_total{reason="max_connections"}`]+m[`aiassist_http_connections_refused_total{reason="max_connections_per_ip"}`] > 0
	})
	if code, _, err := p.get("http://" + addr + "/metrics"); err != nil || code != 200 {
		t.Errorf("/metrics during the flood: %d %v", code, err)
	}
	if err := infer(context.Background(), p.client, port, "demo"); err != nil {
		t.Errorf("an inference during the flood: %v", err)
	}
	if strings.Contains(p.log.String(), "cannot accept a connection") {
		t.Error("accept failed: the daemon ran out of file descriptors")
	}
}
