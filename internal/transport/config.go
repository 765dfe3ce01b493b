package transport

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"net"
	"strings"
	"time"
)

// Transport names.
const (
	Auto  = "auto"
	GRPC  = "grpc"
	HTTPS = "https"
	UDP   = "udp"
)

// Config configures the Shipper. Zero sizes are derived from the instance (internal/exporter/adapt).
type Config struct {
	Collector string // collector host (name or IP)
	GRPCPort  int
	HTTPSPort int
	UDPPort   int
	Transport string // auto, grpc, https or udp
	AllowLoss bool   // auto may choose UDP (for a constrained instance, or when nothing else works)

	ExporterID string // default: the node name
	NodeName   string

	CA                string // CA (PEM) that signed the collector's certificate; default: system roots
	ServerName        string // expected name in the collector's certificate (default: Collector)
	ClientCert        string // client certificate (PEM) for mutual TLS
	ClientKey         string
	TokenFile         string // bearer token sent to the collector
	InsecurePlaintext bool   // no TLS (loopback/standalone only)

	BatchSize     int           // records per batch (gRPC/HTTPS)
	FlushInterval time.Duration // a partial batch leaves after this long
	BufferBytes   int           // bound of encoded batches held for sending/retrying; then drop oldest
	MaxPending    int           // records waiting to be batched; then drop oldest
	UDPMaxBytes   int           // largest datagram
	Window        int           // batches in flight before waiting for acknowledgements
	RetryMin      time.Duration // backoff after a failure, doubled per consecutive failure (with jitter)
	RetryMax      time.Duration
	SwitchAfter   int           // consecutive failures before auto switches transport
	ReturnAfter   time.Duration // auto: how long after a switch the preferred transport is probed again
	SendTimeout   time.Duration // one delivery round (send + acknowledgements)

	Instance *adapt.Instance // the instance's size; nil: detected from /proc and /sys
	// Dial, when set, makes every connection to the collector (benchmarks count bytes with it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Collector: "127.0.0.1", GRPCPort: 7400, HTTPSPort: 7401, UDPPort: 7402, Transport: Auto,
		UDPMaxBytes: 1400, Window: 16, RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second,
		SwitchAfter: 5, ReturnAfter: 5 * time.Minute, SendTimeout: 15 * time.Second,
	}
}

// BindFlags registers the shipper's flags on fs with c's values as defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Collector, "collector", c.Collector, "collector host name or address")
	fs.IntVar(&c.GRPCPort, "collector-grpc-port", c.GRPCPort, "collector gRPC port")
	fs.IntVar(&c.HTTPSPort, "collector-https-port", c.HTTPSPort, "collector HTTPS port")
	fs.IntVar(&c.UDPPort, "collector-udp-port", c.UDPPort, "collector UDP port")
	fs.StringVar(&c.Transport, "transport", c.Transport, "auto, grpc, https or udp (see docs/transport.md)")
	fs.BoolVar(&c.AllowLoss, "allow-loss", c.AllowLoss, "let auto choose UDP, where lost datagrams are counted but not resent")
	fs.StringVar(&c.ExporterID, "exporter-id", c.ExporterID, "exporter identity in batches (default: node name)")
	fs.StringVar(&c.CA, "collector-ca", c.CA, "CA (PEM) of the collector's certificate (default: system roots)")
	fs.StringVar(&c.ServerName, "collector-server-name", c.ServerName, "name expected in the collector's certificate")
	fs.StringVar(&c.ClientCert, "client-cert", c.ClientCert, "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.ClientKey, "client-key", c.ClientKey, "client key (PEM) for mutual TLS")
	fs.StringVar(&c.TokenFile, "token-file", c.TokenFile, "file holding the bearer token for the collector")
	fs.BoolVar(&c.InsecurePlaintext, "insecure-plaintext", c.InsecurePlaintext, "talk to the collector without TLS (loopback only)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "records per batch (0: from the instance size)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "longest a record waits for its batch (0: from the instance size)")
	fs.IntVar(&c.BufferBytes, "buffer-bytes", c.BufferBytes, "memory for batches awaiting delivery; beyond it the oldest are dropped and counted (0: from the instance size)")
	fs.IntVar(&c.UDPMaxBytes, "udp-max-bytes", c.UDPMaxBytes, "largest UDP datagram")
}

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	switch c.Transport {
	case Auto, GRPC, HTTPS, UDP:
	default:
		errs = append(errs, fmt.Errorf("--transport must be auto, grpc, https or udp, not %q", c.Transport))
	}
	if c.Collector == "" {
		errs = append(errs, errors.New("--collector is required"))
	}
	if c.InsecurePlaintext && !loopback(c.Collector) {
		errs = append(errs, fmt.Errorf("--insecure-plaintext only towards a loopback collector, not %q", c.Collector))
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		errs = append(errs, errors.New("--client-cert and --client-key go together"))
	}
	if c.UDPMaxBytes < 512 || c.UDPMaxBytes > 65507 {
		errs = append(errs, fmt.Errorf("--udp-max-bytes %d out of [512, 65507]", c.UDPMaxBytes))
	}
	if c.BatchSize < 0 || c.BufferBytes < 0 || c.FlushInterval < 0 || c.MaxPending < 0 {
		errs = append(errs, errors.New("sizes and intervals must not be negative"))
	}
	if c.Window < 1 || c.SwitchAfter < 1 || c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.SendTimeout <= 0 || c.ReturnAfter <= 0 {
		errs = append(errs, errors.New("window, switch-after, retry and timeout settings must be positive"))
	}
	for _, p := range []int{c.GRPCPort, c.HTTPSPort, c.UDPPort} {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("port %d out of range", p))
		}
	}
	return errors.Join(errs...)
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (c *Config) addr(port int) string { return net.JoinHostPort(c.Collector, fmt.Sprint(port)) }
