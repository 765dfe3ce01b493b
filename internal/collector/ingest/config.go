package ingest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Config configures the ingest. Listen addresses left empty disable that transport.
type Config struct {
	GRPCListen  string
	HTTPSListen string
	UDPListen   string
	SpoolDir    string

	TLSCert           string // server certificate (PEM) for gRPC and HTTPS
	TLSKey            string
	ClientCA          string // when set, exporters must present a certificate signed by it (mTLS)
	TokenFile         string // when set, exporters must send "Authorization: Bearer <token>"
	InsecurePlaintext bool   // gRPC and HTTPS without TLS (loopback/standalone only)

	SegmentBytes        int64
	SpoolMaxBytes       int64         // beyond it the oldest segments go even if unconsumed (counted)
	RetentionInterval   time.Duration // how often consumed segments are removed
	MaxUDPBytes         int
	MaxStreams          uint32  // concurrent gRPC streams
	ExporterBytesPerSec float64 // per-exporter rate limit
	ExporterBurstBytes  int
	MaxExporterBoots    int // (exporter, boot) pairs remembered for de-duplication
	Limits              flowbatch.Limits
}

// DefaultConfig returns the defaults (loopback addresses).
func DefaultConfig() Config {
	return Config{
		GRPCListen: "127.0.0.1:7400", HTTPSListen: "127.0.0.1:7401", UDPListen: "127.0.0.1:7402",
		SpoolDir: "flowscope-spool", SegmentBytes: 64 << 20, SpoolMaxBytes: 8 << 30, RetentionInterval: 5 * time.Second, MaxUDPBytes: 65507, MaxStreams: 1024,
		ExporterBytesPerSec: 64 << 20, ExporterBurstBytes: 256 << 20, MaxExporterBoots: 16384,
		Limits: flowbatch.DefaultLimits(),
	}
}

// BindFlags registers the ingest flags on fs, with c's values as defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCListen, "grpc-listen", c.GRPCListen, "gRPC listen address (empty: off)")
	fs.StringVar(&c.HTTPSListen, "https-listen", c.HTTPSListen, "HTTPS listen address for POST /v1/batches (empty: off)")
	fs.StringVar(&c.UDPListen, "udp-listen", c.UDPListen, "UDP listen address (empty: off)")
	fs.StringVar(&c.SpoolDir, "spool-dir", c.SpoolDir, "directory of the durable spool of accepted batches")
	fs.Int64Var(&c.SpoolMaxBytes, "spool-max-bytes", c.SpoolMaxBytes, "spool size beyond which the oldest batches are removed even if not yet consumed (counted)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "server certificate (PEM)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "server private key (PEM)")
	fs.StringVar(&c.ClientCA, "client-ca", c.ClientCA, "CA (PEM) exporters' client certificates must chain to (mutual TLS)")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "file holding the bearer token exporters must send")
	fs.BoolVar(&c.InsecurePlaintext, "insecure-plaintext", c.InsecurePlaintext, "serve gRPC and HTTP without TLS (loopback only)")
	fs.IntVar(&c.Limits.MaxBytes, "max-batch-bytes", c.Limits.MaxBytes, "largest accepted batch")
	fs.IntVar(&c.Limits.MaxRecords, "max-batch-records", c.Limits.MaxRecords, "most records in a batch")
	fs.Float64Var(&c.ExporterBytesPerSec, "exporter-rate", c.ExporterBytesPerSec, "bytes/s one exporter may send before it is rate-limited")
	fs.IntVar(&c.ExporterBurstBytes, "exporter-burst", c.ExporterBurstBytes, "burst size of the per-exporter limit")
}

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	if c.SpoolDir == "" {
		errs = append(errs, errors.New("--spool-dir is required"))
	}
	tlsWanted := c.GRPCListen != "" || c.HTTPSListen != ""
	if tlsWanted && !c.InsecurePlaintext && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("gRPC/HTTPS need --tls-cert and --tls-key, or --insecure-plaintext"))
	}
	if c.InsecurePlaintext && (c.TLSCert != "" || c.ClientCA != "") {
		errs = append(errs, errors.New("--insecure-plaintext excludes --tls-cert/--client-ca"))
	}
	if c.InsecurePlaintext {
		for _, a := range []string{c.GRPCListen, c.HTTPSListen} {
			if a != "" && !isLoopback(a) {
				errs = append(errs, fmt.Errorf("--insecure-plaintext only on loopback addresses, not %q", a))
			}
		}
	}
	if c.Limits.MaxBytes <= 0 || c.Limits.MaxRecords <= 0 || c.SegmentBytes <= 0 || c.MaxExporterBoots <= 0 ||
		c.SpoolMaxBytes <= 0 || c.RetentionInterval <= 0 {
		errs = append(errs, errors.New("limits must be positive"))
	}
	return errors.Join(errs...)
}

func isLoopback(addr string) bool {
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = strings.Trim(addr[:i], "[]")
	}
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}
