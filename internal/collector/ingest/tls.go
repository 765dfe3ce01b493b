package ingest

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

type tlsSetup struct {
	config *tls.Config // nil: plaintext
	token  string
}

func loadTLS(c Config) (*tlsSetup, error) {
	tok, err := readToken(c.TokenFile)
	if err != nil {
		return nil, err
	}
	ts := &tlsSetup{token: tok}
	if c.InsecurePlaintext || c.TLSCert == "" {
		return ts, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("loading server certificate: %w", err)
	}
	ts.config = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in client CA file %s", c.ClientCA)
		}
		ts.config.ClientCAs = pool
		ts.config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return ts, nil
}

// authorized checks an Authorization header value against the configured token.
func (ts *tlsSetup) authorized(header string) bool {
	if ts.token == "" {
		return true
	}
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(ts.token)) == 1
}
