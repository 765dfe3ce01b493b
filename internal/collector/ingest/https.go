package ingest

import (
	"context"
	"errors"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// BatchPath is where exporters POST batches over HTTPS.
const BatchPath = "/v1/batches"

// Content types of the HTTPS transport.
const (
	ContentTypeProto = "application/x-protobuf"
	ContentTypeJSON  = "application/json"
)

func (in *Ingest) startHTTPS(_ context.Context, g *errgroup.Group, ln net.Listener, _ net.PacketConn) (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BatchPath, in.handleBatch)
	srv := &http.Server{
		Handler: mux, TLSConfig: in.tls.config, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: log.New(serverErrors{in}, "", 0),
	}
	g.Go(func() error {
		var err error
		if in.tls.config != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
	return ln.Addr().String(), stop, nil
}

func (in *Ingest) handleBatch(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := ct == ContentTypeJSON
	if !in.tls.authorized(r.Header.Get("Authorization")) {
		in.m.rejected.WithLabelValues(TransportHTTPS, "unauthenticated").Inc()
		in.logs.warn("unauthenticated", "exporter with a wrong or missing token", "transport", TransportHTTPS, "remote", r.RemoteAddr)
		writeAck(w, isJSON, http.StatusUnauthorized, &flowv1.Ack{Status: flowv1.Ack_STATUS_REJECTED,
			Reason: flowv1.RejectReason_REJECT_REASON_UNAUTHENTICATED, Message: "missing or wrong bearer token"})
		return
	}
	if ct != ContentTypeJSON && ct != ContentTypeProto && ct != "" {
		writeAck(w, false, http.StatusUnsupportedMediaType, &flowv1.Ack{Status: flowv1.Ack_STATUS_REJECTED,
			Reason: flowv1.RejectReason_REJECT_REASON_MALFORMED, Message: "content type must be " + ContentTypeProto + " or " + ContentTypeJSON})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(in.cfg.Limits.MaxBytes)))
	if err != nil {
		ack := in.rejected(TransportHTTPS, Key{}, &flowbatch.RejectError{Reason: flowv1.RejectReason_REJECT_REASON_TOO_LARGE, Msg: err.Error()})
		writeAck(w, isJSON, http.StatusRequestEntityTooLarge, ack)
		return
	}
	if isJSON {
		if body, err = jsonToProto(body); err != nil {
			ack := in.rejected(TransportHTTPS, Key{}, &flowbatch.RejectError{Reason: flowv1.RejectReason_REJECT_REASON_MALFORMED, Msg: err.Error()})
			writeAck(w, true, http.StatusBadRequest, ack)
			return
		}
	}
	ack := in.Accept(TransportHTTPS, body)
	writeAck(w, isJSON, httpStatus(ack), ack)
}

func jsonToProto(body []byte) ([]byte, error) {
	pb := &flowv1.Batch{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(body, pb); err != nil {
		return nil, err
	}
	return proto.Marshal(pb)
}

func httpStatus(a *flowv1.Ack) int {
	if a.Status != flowv1.Ack_STATUS_REJECTED {
		return http.StatusOK
	}
	switch a.Reason {
	case flowv1.RejectReason_REJECT_REASON_TOO_LARGE:
		return http.StatusRequestEntityTooLarge
	case flowv1.RejectReason_REJECT_REASON_RATE_LIMITED:
		return http.StatusTooManyRequests
	case flowv1.RejectReason_REJECT_REASON_UNAVAILABLE:
		return http.StatusServiceUnavailable
	case flowv1.RejectReason_REJECT_REASON_UNAUTHENTICATED:
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

func writeAck(w http.ResponseWriter, isJSON bool, code int, a *flowv1.Ack) {
	var b []byte
	if isJSON {
		b, _ = protojson.Marshal(a)
		w.Header().Set("Content-Type", ContentTypeJSON)
	} else {
		b, _ = proto.Marshal(a)
		w.Header().Set("Content-Type", ContentTypeProto)
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// serverErrors receives net/http's own error log: failed TLS handshakes are counted, and
// everything is logged through slog, rate-limited.
type serverErrors struct{ in *Ingest }

func (w serverErrors) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	key := "http-server"
	if strings.Contains(msg, "TLS handshake error") {
		key = "tls"
		w.in.m.rejected.WithLabelValues(TransportHTTPS, "tls").Inc()
	}
	w.in.logs.warn(key, "HTTPS server", "transport", TransportHTTPS, "err", msg)
	return len(p), nil
}
