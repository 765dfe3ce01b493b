package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

func (in *Ingest) startGRPC(_ context.Context, g *errgroup.Group, ln net.Listener, _ net.PacketConn) (string, func(), error) {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(flowbatch.GRPCServerCodec{}),
		grpc.MaxRecvMsgSize(in.cfg.Limits.MaxBytes),
		grpc.MaxConcurrentStreams(in.cfg.MaxStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(10 * time.Second),
	}
	if in.tls.config != nil {
		opts = append(opts, grpc.Creds(countingCreds{credentials.NewTLS(in.tls.config), in}))
	}
	srv := grpc.NewServer(opts...)
	flowv1.RegisterFlowCollectorServer(srv, &grpcService{in: in})
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	})
	stop := func() {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			srv.Stop()
		}
	}
	return ln.Addr().String(), stop, nil
}

type grpcService struct {
	flowv1.UnimplementedFlowCollectorServer
	in *Ingest
}

// Stream answers each batch with one Ack, in order.
func (s *grpcService) Stream(st flowv1.FlowCollector_StreamServer) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	auth := ""
	if v := md.Get("authorization"); len(v) > 0 {
		auth = v[0]
	}
	if !s.in.tls.authorized(auth) {
		s.in.m.rejected.WithLabelValues(TransportGRPC, "unauthenticated").Inc()
		s.in.logs.warn("unauthenticated", "exporter with a wrong or missing token", "transport", TransportGRPC)
		return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	}
	// A reader goroutine lets batches that arrive together share one fsync.
	ctx := st.Context()
	msgs := make(chan flowbatch.Raw, groupCommit)
	errc := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			var raw flowbatch.Raw
			if err := st.RecvMsg(&raw); err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- raw:
			case <-ctx.Done():
				raw.Release()
				errc <- ctx.Err()
				return
			}
		}
	}()
	for raw := range msgs {
		group := []flowbatch.Raw{raw}
	more:
		for len(group) < groupCommit {
			select {
			case d, ok := <-msgs:
				if !ok {
					break more
				}
				group = append(group, d)
			default:
				break more
			}
		}
		datas := make([][]byte, len(group))
		for i := range group {
			datas[i] = group[i].Data
		}
		acks := s.in.AcceptMany(TransportGRPC, datas)
		for i := range group { // stored (copied into the spool) or refused: no longer needed
			group[i].Release()
		}
		for _, ack := range acks {
			if err := st.SendMsg(ack); err != nil {
				return err
			}
		}
	}
	err := <-errc
	if errors.Is(err, io.EOF) {
		return nil
	}
	if status.Code(err) == codes.ResourceExhausted {
		s.in.m.rejected.WithLabelValues(TransportGRPC, "too_large").Inc()
		s.in.logs.warn("too_large", "gRPC message over the size limit", "err", err)
	}
	return err
}

// groupCommit is the most batches of one stream stored with one fsync.
const groupCommit = 32

// countingCreds counts and logs failed TLS handshakes (bad or missing client certificates).
type countingCreds struct {
	credentials.TransportCredentials
	in *Ingest
}

func (c countingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.in.m.rejected.WithLabelValues(TransportGRPC, "tls").Inc()
		c.in.logs.warn("tls", "TLS handshake failed", "transport", TransportGRPC, "remote", conn.RemoteAddr().String(), "err", err)
	}
	return nc, info, err
}

func (c countingCreds) Clone() credentials.TransportCredentials {
	return countingCreds{c.TransportCredentials.Clone(), c.in}
}
