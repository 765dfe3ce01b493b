package transport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// security is the client side of TLS and the bearer token.
type security struct {
	tls   *tls.Config // nil: plaintext
	token string
}

func loadSecurity(c Config) (*security, error) {
	sec := &security{}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading token file: %w", err)
		}
		sec.token = strings.TrimSpace(string(b))
		if sec.token == "" {
			return nil, fmt.Errorf("token file %s is empty", c.TokenFile)
		}
	}
	if c.InsecurePlaintext {
		return sec, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if cfg.ServerName == "" {
		cfg.ServerName = c.Collector
	}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("reading collector CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", c.CA)
		}
		cfg.RootCAs = pool
	}
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	sec.tls = cfg
	return sec, nil
}

func (s *security) authHeader() string {
	if s.token == "" {
		return ""
	}
	return "Bearer " + s.token
}
