package daemon_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeServerCert writes a self-signed certificate for 127.0.0.1 with the
// serial given, replacing cert.pem and key.pem by rename as certbot does.
func writeServerCert(t *testing.T, dir string, serial int64) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "aiassist test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	put := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p+".new", pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600)
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The key first: the watch reloads once both are in place.
	k := put("key.pem", "EC PRIVATE KEY", kb)
	return put("cert.pem", "CERTIFICATE", der), k
}

// TestTLSListener serves HTTPS from the config: TLS 1.1 refused, 1.2 and
// 1.3 served, and a certificate renewed on disk served after the reload
// its renewal triggers, while a connection opened before keeps working.
func TestTLSListener(t *testing.T) {
	requireBinary(t)
	dir := t.TempDir()
	writeDemo(t, filepath.Join(dir, "demo.onnx"))
	writeServerCert(t, dir, 1)
	plain, secure := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "config.cue")
	writeConfig(t, cfg, fmt.Sprintf(`listeners: [{port: %d}, {port: %d, tls: {cert: "cert.pem", key: "key.pem"}}]
models: demo: {kind: "tensor", path: "demo.onnx"}
`, plain, secure))
	// The watchdog probes every listener, this one over TLS.
	p := start(t, cfg, "WATCHDOG_USEC=200000")
	p.until("generation 1", func() bool { return p.metrics(plain)["aiassist_config_generation"] == 1 })
	addr := fmt.Sprintf("127.0.0.1:%d", secure)
	dial := func(minV, maxV uint16) (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: minV, MaxVersion: maxV})
	}
	if c, err := dial(tls.VersionTLS10, tls.VersionTLS11); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was served")
	}
	infer := func(c net.Conn, r *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "POST /v2/models/demo/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(demoInput), demoInput)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), demoOutput) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return nil
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := dial(v, v)
		if err != nil {
			t.Fatalf("TLS %x: %v", v, err)
		}
		if err := infer(c, bufio.NewReader(c)); err != nil {
			t.Errorf("TLS %x: %v", v, err)
		}
		c.Close()
	}
	before, err := dial(tls.VersionTLS12, tls.VersionTLS13)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	br := bufio.NewReader(before)
	if err := infer(before, br); err != nil {
		t.Fatal(err)
	}

	writeServerCert(t, dir, 2)
	p.until("the renewed certificate", func() bool {
		c, err := dial(tls.VersionTLS12, tls.VersionTLS13)
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64() == 2
	})
	if err := infer(before, br); err != nil {
		t.Errorf("the connection opened before the renewal: %v", err)
	}
	log := p.log.String()
	if !strings.Contains(log, `"msg":"reloaded","source":"file change"`) {
		t.Error("the renewal did not reload through the file watch")
	}
	if !strings.Contains(log, "systemd watchdog enabled") || strings.Contains(log, "self-check failed") {
		t.Error("the watchdog's self-check did not pass on a TLS listener")
	}
}
