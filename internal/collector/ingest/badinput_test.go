package ingest

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

func rejectedCount(t *testing.T, reg *prometheus.Registry, transport, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flowscope_collector_batches_rejected_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["transport"] == transport && labels["reason"] == reason {
				return m.Counter.GetValue()
			}
		}
	}
	return 0
}

func withVersion(t *testing.T, data []byte, v uint32) []byte {
	t.Helper()
	pb := &flowv1.Batch{}
	if err := proto.Unmarshal(data, pb); err != nil {
		t.Fatal(err)
	}
	pb.MajorVersion = v
	out, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// badInputs are encoded batches each transport must refuse, with the reason it must give.
func badInputs(t *testing.T) []struct {
	name   string
	data   []byte
	reason string
} {
	good := encodeBatch(t, "bad", "b1", 1, 3) // small enough for a datagram
	return []struct {
		name   string
		data   []byte
		reason string
	}{
		{"garbage", []byte("\xff\xff\xff\xff not a batch"), "malformed"},
		{"truncated", good[:len(good)/2], "malformed"},
		{"wrong major version", withVersion(t, good, 2), "version"},
		{"no version", withVersion(t, good, 0), "version"},
		{"oversize", bytes.Repeat([]byte{0}, 300<<10), "too_large"},
	}
}

func TestBadInputEveryTransport(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxBytes = 256 << 10
	cfg.MaxUDPBytes = 1400
	reg := prometheus.NewRegistry()
	c := newCollect()
	in := startIngestWith(t, cfg, reg, c)
	a := in.Addrs()
	// One good batch first: nothing already accepted may be lost.
	if ack := in.Accept(TransportGRPC, encodeBatch(t, "good", "g", 1, 10)); ack.Status != flowv1.Ack_STATUS_ACCEPTED {
		t.Fatal(ack)
	}
	for _, bad := range badInputs(t) {
		t.Run("grpc/"+bad.name, func(t *testing.T) {
			before := rejectedCount(t, reg, TransportGRPC, bad.reason)
			st := grpcStream(t, a.GRPC)
			if err := st.SendMsg(&flowbatch.Raw{Data: bad.data}); err != nil {
				t.Fatal(err)
			}
			ack := &flowv1.Ack{}
			err := st.RecvMsg(ack)
			switch {
			case bad.reason == "too_large":
				if status.Code(err) != codes.ResourceExhausted {
					t.Errorf("oversize: %v", err)
				}
			case err != nil || ack.Status != flowv1.Ack_STATUS_REJECTED || flowbatch.ReasonName(ack.Reason) != bad.reason || ack.Message == "":
				t.Errorf("got %v %v, want a %s rejection", ack, err, bad.reason)
			}
			waitCount(t, reg, TransportGRPC, bad.reason, before+1)
		})
		t.Run("https/"+bad.name, func(t *testing.T) {
			before := rejectedCount(t, reg, TransportHTTPS, bad.reason)
			resp, err := http.Post("http://"+a.HTTPS+BatchPath, ContentTypeProto, bytes.NewReader(bad.data))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %s", resp.Status)
			}
			waitCount(t, reg, TransportHTTPS, bad.reason, before+1)
		})
		t.Run("udp/"+bad.name, func(t *testing.T) {
			data := bad.data
			if bad.reason == "too_large" {
				data = data[:1401]
			}
			before := rejectedCount(t, reg, TransportUDP, bad.reason)
			conn, err := net.Dial("udp", a.UDP)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(data); err != nil {
				t.Fatal(err)
			}
			waitCount(t, reg, TransportUDP, bad.reason, before+1)
		})
	}
	t.Run("https/malformed json", func(t *testing.T) {
		resp, err := http.Post("http://"+a.HTTPS+BatchPath, ContentTypeJSON, bytes.NewReader([]byte(`{"majorVersion": "x"`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %s", resp.Status)
		}
	})
	got := c.waitFor(t, 1)
	if len(got) != 1 || got[0].Batch.ExporterID != "good" {
		t.Errorf("the spool holds %d entries after bad input, want only the good one", len(got))
	}
}

func waitCount(t *testing.T, reg *prometheus.Registry, transport, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if rejectedCount(t, reg, transport, reason) >= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("rejected{%s,%s} = %v, want %v", transport, reason, rejectedCount(t, reg, transport, reason), want)
}

func TestJSONAccepted(t *testing.T) {
	in := startIngest(t, testConfig(t))
	pb := &flowv1.Batch{}
	if err := proto.Unmarshal(encodeBatch(t, "json", "b", 1, 3), pb); err != nil {
		t.Fatal(err)
	}
	body, err := protojsonMarshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+in.Addrs().HTTPS+BatchPath, ContentTypeJSON, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %s", resp.Status)
	}
}

// TestFloodDoesNotStarveOthers: one exporter over its rate limit is refused (retryably)
// while another is still accepted.
func TestFloodDoesNotStarveOthers(t *testing.T) {
	cfg := testConfig(t)
	cfg.ExporterBytesPerSec, cfg.ExporterBurstBytes = 50<<10, 100<<10
	reg := prometheus.NewRegistry()
	in, err := New(cfg, reg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop() })
	limited := 0
	for seq := uint64(1); seq <= 40; seq++ {
		ack := in.Accept(TransportGRPC, encodeBatch(t, "flood", "f", seq, 200))
		if ack.Status == flowv1.Ack_STATUS_REJECTED {
			if ack.Reason != flowv1.RejectReason_REJECT_REASON_RATE_LIMITED || !ack.Retryable {
				t.Fatalf("flood rejection: %v", ack)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("the flood was never limited")
	}
	if ack := in.Accept(TransportGRPC, encodeBatch(t, "calm", "c", 1, 200)); ack.Status != flowv1.Ack_STATUS_ACCEPTED {
		t.Errorf("a calm exporter was refused during another's flood: %v", ack)
	}
	if n := rejectedCount(t, reg, TransportGRPC, "rate_limited"); n != float64(limited) {
		t.Errorf("rate_limited counter %v, want %d", n, limited)
	}
}
