package listener

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLS is a listener's TLS setting: the files are read by Prepare, on every
// load, so a certificate renewed on disk is served after the next reload
// by the socket already open, to new handshakes only; connections in
// flight keep the certificate they shook hands with.
type TLS struct {
	CertFile string
	KeyFile  string
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13; lower is
	// refused.
	MinVersion uint16
	// ClientCAFile, when set, makes the listener require a client
	// certificate signed by one of its CAs.
	ClientCAFile string
}

// Spec is one listener: an address (host:port) and, for HTTPS, its TLS
// setting.
type Spec struct {
	Addr string
	TLS  *TLS
}

// CheckTLS reads the files of t as a load would, without serving them.
func CheckTLS(t *TLS) error {
	_, err := loadTLS(t)
	return err
}

// loadTLS reads the files of t into a server configuration. A certificate
// that does not load fails here, so a reload with a broken one changes
// nothing and the old certificate keeps serving.
func loadTLS(t *TLS) (*tls.Config, error) {
	if t.MinVersion < tls.VersionTLS12 {
		return nil, fmt.Errorf("TLS versions below 1.2 are not served")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load the certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	c := &tls.Config{
		MinVersion:   t.MinVersion,
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 only: fasthttp does not speak HTTP/2.
		NextProtos: []string{"http/1.1"},
	}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the client CA file %s holds no PEM certificate", t.ClientCAFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}
