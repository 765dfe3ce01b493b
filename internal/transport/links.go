package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// link is one transport to the collector. deliver sends the batches and returns an Ack for
// each (nil: no answer, retry it) and an error when the round failed. Only the sender
// goroutine calls a link.
type link interface {
	name() string
	deliver(ctx context.Context, bs []*outBatch) ([]*flowv1.Ack, error)
	close()
}

// grpcLink keeps one bidirectional stream; acknowledgements come in order.
type grpcLink struct {
	addr    string
	sec     *security
	timeout time.Duration
	dial    dialFunc

	conn   *grpc.ClientConn
	stream grpc.ClientStream
	cancel context.CancelFunc
}

func (l *grpcLink) name() string { return GRPC }

func (l *grpcLink) open(ctx context.Context) error {
	if l.conn == nil {
		creds := insecure.NewCredentials()
		if l.sec.tls != nil {
			creds = credentials.NewTLS(l.sec.tls)
		}
		opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(flowbatch.GRPCCodec{}))}
		if l.dial != nil {
			opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return l.dial(ctx, "tcp", a) }))
		}
		conn, err := grpc.NewClient(l.addr, opts...)
		if err != nil {
			return fmt.Errorf("dialing collector %s: %w", l.addr, err)
		}
		l.conn = conn
	}
	sctx, cancel := context.WithCancel(ctx)
	if h := l.sec.authHeader(); h != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", h)
	}
	st, err := l.conn.NewStream(sctx, &flowv1.FlowCollector_ServiceDesc.Streams[0], flowv1.FlowCollector_Stream_FullMethodName)
	if err != nil {
		cancel()
		return fmt.Errorf("opening stream to %s: %w", l.addr, err)
	}
	l.stream, l.cancel = st, cancel
	return nil
}

func (l *grpcLink) deliver(ctx context.Context, bs []*outBatch) ([]*flowv1.Ack, error) {
	if l.stream == nil {
		if err := l.open(ctx); err != nil {
			return nil, err
		}
	}
	st := l.stream
	timer := time.AfterFunc(l.timeout, l.cancel) // a stuck round ends the stream
	defer timer.Stop()
	acks := make([]*flowv1.Ack, len(bs))
	errc := make(chan error, 1)
	go func() { // send while acknowledgements come back
		for _, b := range bs {
			if err := st.SendMsg(&flowbatch.Raw{Data: b.data}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range bs {
		a := &flowv1.Ack{}
		if err := st.RecvMsg(a); err != nil {
			l.reset()
			<-errc
			return acks, fmt.Errorf("gRPC stream to %s: %w", l.addr, err)
		}
		acks[i] = a
	}
	if err := <-errc; err != nil {
		l.reset()
		return acks, fmt.Errorf("gRPC stream to %s: %w", l.addr, err)
	}
	return acks, nil
}

func (l *grpcLink) reset() {
	if l.cancel != nil {
		l.cancel()
	}
	l.stream, l.cancel = nil, nil
}

func (l *grpcLink) close() {
	if l.stream != nil {
		_ = l.stream.CloseSend()
	}
	l.reset()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

// httpsLink POSTs each batch; the answer body is an Ack.
type httpsLink struct {
	url    string
	sec    *security
	client *http.Client
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func newHTTPSLink(addr string, sec *security, timeout time.Duration, dial dialFunc) *httpsLink {
	scheme := "https"
	if sec.tls == nil {
		scheme = "http"
	}
	tr := &http.Transport{TLSClientConfig: sec.tls, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, DialContext: dial}
	return &httpsLink{url: scheme + "://" + addr + "/v1/batches", sec: sec, client: &http.Client{Transport: tr, Timeout: timeout}}
}

func (l *httpsLink) name() string { return HTTPS }

// httpsParallel is how many POSTs of one round run at once (the collector stores
// concurrent batches with one fsync).
const httpsParallel = 4

func (l *httpsLink) deliver(ctx context.Context, bs []*outBatch) ([]*flowv1.Ack, error) {
	acks := make([]*flowv1.Ack, len(bs))
	errs := make([]error, len(bs))
	sem := make(chan struct{}, httpsParallel)
	var wg sync.WaitGroup
	for i, b := range bs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			acks[i], errs[i] = l.post(ctx, b.data)
		}()
	}
	wg.Wait()
	return acks, errors.Join(errs...)
}

func (l *httpsLink) post(ctx context.Context, data []byte) (*flowv1.Ack, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if h := l.sec.authHeader(); h != "" {
		req.Header.Set("Authorization", h)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting batch: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading answer: %w", err)
	}
	a := &flowv1.Ack{}
	if err := proto.Unmarshal(body, a); err != nil || a.Status == flowv1.Ack_STATUS_UNSPECIFIED {
		return nil, fmt.Errorf("collector answered %s without an acknowledgement", resp.Status)
	}
	if a.Reason == flowv1.RejectReason_REJECT_REASON_UNAUTHENTICATED {
		return nil, errors.New("collector refused the token")
	}
	return a, nil
}

func (l *httpsLink) close() { l.client.CloseIdleConnections() }

// udpLink sends one datagram per batch; nothing is answered, so a sent batch is done.
type udpLink struct {
	addr string
	dial dialFunc
	conn net.Conn
}

func (l *udpLink) name() string { return UDP }

func (l *udpLink) deliver(ctx context.Context, bs []*outBatch) ([]*flowv1.Ack, error) {
	if l.conn == nil {
		dial := l.dial
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		c, err := dial(ctx, "udp", l.addr)
		if err != nil {
			return nil, fmt.Errorf("dialing UDP %s: %w", l.addr, err)
		}
		l.conn = c
	}
	acks := make([]*flowv1.Ack, len(bs))
	for i, b := range bs {
		if _, err := l.conn.Write(b.data); err != nil {
			l.close()
			return acks, fmt.Errorf("sending datagram to %s: %w", l.addr, err)
		}
		acks[i] = &flowv1.Ack{Sequence: b.seq, Status: flowv1.Ack_STATUS_ACCEPTED}
	}
	return acks, nil
}

func (l *udpLink) close() {
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}
