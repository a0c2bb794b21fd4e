package listener

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
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number, and its key, to dir/cert.pem and dir/key.pem (replacing
// them by rename, as certbot and cert-manager do).
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "aiassist test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	put := func(path, typ string, b []byte) {
		if err := os.WriteFile(path+".new", pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	put(certFile, "CERTIFICATE", der)
	put(keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

// handshake connects with the TLS versions given and returns the
// connection, whose peer certificate tells which certificate is served.
func handshake(addr string, minV, maxV uint16) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: minV, MaxVersion: maxV})
}

// request sends one keep-alive request on c and reads the answer.
func request(c net.Conn, r *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "ok" {
		return fmt.Errorf("answer %q", b)
	}
	return nil
}

func serial(c *tls.Conn) int64 {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSVersionsAndCertificateSwap(t *testing.T) {
	m, _ := newManager(t)
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	spec := []Spec{{Addr: addr, TLS: &TLS{CertFile: certFile, KeyFile: keyFile, MinVersion: tls.VersionTLS12}}}
	p, err := m.Prepare(spec, settings)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()

	if c, err := handshake(addr, tls.VersionTLS10, tls.VersionTLS11); err == nil {
		c.Close()
		t.Error("a TLS 1.1 client was served")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := handshake(addr, v, v)
		if err != nil {
			t.Errorf("TLS %x: %v", v, err)
			continue
		}
		if err := request(c, bufio.NewReader(c)); err != nil {
			t.Errorf("TLS %x: %v", v, err)
		}
		c.Close()
	}

	// A connection opened before the swap.
	before, err := handshake(addr, tls.VersionTLS12, tls.VersionTLS13)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	br := bufio.NewReader(before)
	if err := request(before, br); err != nil {
		t.Fatal(err)
	}

	// A broken certificate fails the load and the old one keeps serving.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prepare(spec, settings); err == nil || !strings.Contains(err.Error(), "listeners.0.tls") {
		t.Errorf("a broken certificate: err %v, want one naming listeners.0.tls", err)
	}
	if c, err := handshake(addr, tls.VersionTLS12, tls.VersionTLS13); err != nil || serial(c) != 1 {
		t.Errorf("after the failed load: %v", err)
	} else {
		c.Close()
	}

	// The renewed certificate is served to new handshakes after the load,
	// on the same socket; the old connection keeps working.
	writeCert(t, dir, 2)
	p, err = m.Prepare(spec, settings)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.opened) != 0 {
		t.Error("the certificate swap bound a new socket")
	}
	p.Commit()
	c, err := handshake(addr, tls.VersionTLS12, tls.VersionTLS13)
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(c); got != 2 {
		t.Errorf("served certificate %d after the swap, want 2", got)
	}
	c.Close()
	if err := request(before, br); err != nil {
		t.Errorf("the connection opened before the swap: %v", err)
	}
	if serial(before) != 1 {
		t.Error("the old connection changed certificate")
	}
}

// TestTLSWithOpenSSL checks the versions with a client that is not Go's.
func TestTLSWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing; CI installs it")
		}
		t.Skip("openssl is missing")
	}
	m, _ := newManager(t)
	certFile, keyFile := writeCert(t, t.TempDir(), 7)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p, err := m.Prepare([]Spec{{Addr: addr, TLS: &TLS{CertFile: certFile, KeyFile: keyFile, MinVersion: tls.VersionTLS12}}}, settings)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	run := func(flag string) (string, error) {
		cmd := exec.Command(openssl, "s_client", "-connect", addr, flag, "-ign_eof")
		cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, flag := range []string{"-tls1_2", "-tls1_3"} {
		out, err := run(flag)
		if err != nil || !strings.Contains(out, "\r\n\r\nok") && !strings.Contains(out, "\nok") {
			t.Errorf("openssl s_client %s: %v\n%s", flag, err, out)
		}
	}
	// OpenSSL 3 itself refuses TLS 1.1 at its default security level, so
	// ask for it at level 0: then only the server can refuse.
	out, err := exec.Command(openssl, "s_client", "-connect", addr, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Cipher is (NONE)") || !strings.Contains(string(out), "tlsv1 alert protocol version") {
		t.Errorf("openssl -tls1_1 was not refused with a protocol version alert (err %v):\n%s", err, out)
	}
}

// TestTLSClientCA: with client_ca a client must present a certificate the
// CA signed.
func TestTLSClientCA(t *testing.T) {
	m, _ := newManager(t)
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "test clients CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clTmpl := &x509.Certificate{SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "client"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	clDER, _ := x509.CreateCertificate(rand.Reader, clTmpl, caCert, &clientKey.PublicKey, caKey)

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p, err := m.Prepare([]Spec{{Addr: addr, TLS: &TLS{CertFile: certFile, KeyFile: keyFile, MinVersion: tls.VersionTLS12, ClientCAFile: caFile}}}, settings)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit()
	try := func(certs []tls.Certificate) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: certs})
		if err != nil {
			return err
		}
		defer c.Close()
		return request(c, bufio.NewReader(c))
	}
	if err := try(nil); err == nil {
		t.Error("a client without a certificate was served")
	}
	if err := try([]tls.Certificate{{Certificate: [][]byte{clDER}, PrivateKey: clientKey}}); err != nil {
		t.Errorf("a client with a certificate of the CA: %v", err)
	}
}
