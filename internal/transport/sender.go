package transport

import (
	"context"
	"math/rand/v2"
	"net"
	"time"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// drainTimeout bounds how long Stop keeps delivering what is queued.
const drainTimeout = 3 * time.Second

func (s *Shipper) buildLinks() []link {
	g := &grpcLink{addr: s.cfg.addr(s.cfg.GRPCPort), sec: s.sec, timeout: s.cfg.SendTimeout, dial: s.cfg.Dial}
	h := newHTTPSLink(s.cfg.addr(s.cfg.HTTPSPort), s.sec, s.cfg.SendTimeout, s.cfg.Dial)
	u := &udpLink{addr: s.cfg.addr(s.cfg.UDPPort), dial: s.cfg.Dial}
	switch s.cfg.Transport {
	case GRPC:
		return []link{g}
	case HTTPS:
		return []link{h}
	case UDP:
		return []link{u}
	}
	// auto: gRPC, then HTTPS (where only HTTP passes), then UDP if loss is allowed; a
	// constrained instance that allows loss prefers UDP (cheapest).
	if !s.cfg.AllowLoss {
		return []link{g, h}
	}
	if s.inst.Constrained() {
		return []link{u, g, h}
	}
	return []link{g, h, u}
}

// choose picks the first reachable transport in preference order (for auto); UDP cannot be
// probed and counts as reachable.
func (s *Shipper) choose(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = 0
	if len(s.links) > 1 {
		for i, l := range s.links {
			if s.reachable(ctx, l) {
				s.cur = i
				break
			}
		}
	}
	s.m.active.WithLabelValues(s.links[s.cur].name()).Set(1)
	s.log.Info("transport chosen", "transport", s.links[s.cur].name(), "candidates", len(s.links), "boot_id", s.bootID)
}

func (s *Shipper) reachable(ctx context.Context, l link) bool {
	port := s.cfg.GRPCPort
	switch l.name() {
	case UDP:
		return true
	case HTTPS:
		port = s.cfg.HTTPSPort
	}
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", s.cfg.addr(port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *Shipper) switchLocked(reason string) { s.switchToLocked((s.cur+1)%len(s.links), reason) }

func (s *Shipper) switchToLocked(next int, reason string) {
	if len(s.links) < 2 || next == s.cur {
		return
	}
	from := s.links[s.cur]
	from.close()
	s.cur = next
	s.switched = time.Now()
	to := s.links[s.cur].name()
	s.stats.Switches++
	s.counters[CounterSwitches]++
	s.m.switches.WithLabelValues(from.name(), to).Inc()
	s.m.active.WithLabelValues(from.name()).Set(0)
	s.m.active.WithLabelValues(to).Set(1)
	s.log.Warn("switching transport", "from", from.name(), "to", to, "reason", reason)
}

// runSender delivers queued batches until ctx ends, then drains for up to drainTimeout.
func (s *Shipper) runSender(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		if !s.round(ctx, &failures) {
			select {
			case <-ctx.Done():
			case <-s.kickSend:
			}
		}
	}
	// Shutdown: the batcher has cut the last records (it stops on the same ctx); drain.
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	failures = 0
	for drainCtx.Err() == nil && failures == 0 {
		if !s.round(drainCtx, &failures) {
			select {
			case <-drainCtx.Done():
			case <-s.kickSend:
			case <-time.After(50 * time.Millisecond): // the batcher's last cut may still come
			}
			s.mu.Lock()
			empty := len(s.q.items) == 0
			s.mu.Unlock()
			if empty {
				return nil
			}
		}
	}
	return nil
}

// maybeReturn moves auto back to the preferred transport once it answers again, probed at
// most every ReturnAfter.
func (s *Shipper) maybeReturn(ctx context.Context) {
	s.mu.Lock()
	due := s.cur != 0 && len(s.links) > 1 && time.Since(s.switched) >= s.cfg.ReturnAfter
	if due {
		s.switched = time.Now() // next probe in ReturnAfter, whatever this one says
	}
	preferred := s.links[0]
	s.mu.Unlock()
	if !due || preferred.name() == UDP || !s.reachable(ctx, preferred) {
		return
	}
	s.mu.Lock()
	s.switchToLocked(0, "the preferred transport answers again")
	s.mu.Unlock()
}

// round sends one window of batches; false when there was nothing to send.
func (s *Shipper) round(ctx context.Context, failures *int) bool {
	s.maybeReturn(ctx)
	s.mu.Lock()
	l := s.links[s.cur]
	bs := s.q.take(s.cfg.Window)
	if len(bs) == 0 {
		s.mu.Unlock()
		return false
	}
	if l.name() == UDP {
		bs = s.fitDatagramsLocked(bs)
	}
	for _, b := range bs {
		s.assignLocked(b, l.name() == UDP)
	}
	s.mu.Unlock()
	for _, b := range bs {
		s.m.sent.WithLabelValues(l.name()).Inc()
		s.m.bytes.WithLabelValues(l.name()).Add(float64(len(b.data)))
	}
	acks, err := l.deliver(ctx, bs)
	retry := s.settle(l.name(), bs, acks)
	if err == nil && !retry {
		*failures = 0
		return true
	}
	*failures++
	s.m.failures.WithLabelValues(l.name()).Inc()
	s.mu.Lock()
	s.counters[CounterSendFailures]++
	if err != nil && *failures%s.cfg.SwitchAfter == 0 {
		s.switchLocked(err.Error())
	}
	s.mu.Unlock()
	if err != nil && *failures == 1 || *failures%20 == 0 {
		s.log.Warn("delivery failed; retrying", "transport", l.name(), "failures", *failures, "err", err)
	}
	sleep(ctx, s.backoff(*failures))
	return true
}

// assignLocked numbers a batch on its first send and attaches the pending counters.
func (s *Shipper) assignLocked(b *outBatch, udp bool) {
	if b.seq != 0 {
		return
	}
	b.seq = s.nextSeq
	s.nextSeq++
	cs := make([]flowbatch.Counter, 0, len(s.counters))
	for k, v := range s.counters {
		cs = append(cs, flowbatch.Counter{Name: k, Value: v})
	}
	flowbatch.SortCounters(cs)
	header, err := flowbatch.AppendHeader(nil, b.seq, cs)
	if err != nil || (udp && len(header)+len(b.body) > s.cfg.UDPMaxBytes) {
		cs = nil // the counters wait for the next batch
		header, _ = flowbatch.AppendHeader(nil, b.seq, nil)
	}
	for _, c := range cs {
		delete(s.counters, c.Name)
	}
	b.counters = cs
	s.q.bytes -= b.size()
	b.data = append(b.body, header...) // the header may follow the body: fields come in any order
	b.body = nil
	s.q.bytes += b.size()
}

// fitDatagramsLocked re-cuts batches too large for a datagram (queued while another transport
// was in use); batches already numbered lose their number (the collector counts it missing).
func (s *Shipper) fitDatagramsLocked(bs []*outBatch) []*outBatch {
	out := bs[:0]
	for _, b := range bs {
		if b.size() <= s.cfg.UDPMaxBytes-headerRoom || b.heartbeat {
			out = append(out, b)
			continue
		}
		parts := s.recut(b)
		s.q.done(b)
		s.counters[CounterRecutBatches]++
		for _, p := range parts {
			p.inflight = true
			s.q.items = append(s.q.items, p)
			s.q.bytes += p.size()
			out = append(out, p)
		}
	}
	return out
}

func (s *Shipper) recut(b *outBatch) []*outBatch {
	data := b.data
	if data == nil {
		data = b.body
	}
	pb, _ := flowbatch.Decode(data, flowbatch.StructureLimits(), s.clock())
	if pb == nil {
		return nil
	}
	pb.MajorVersion, pb.ExporterId, pb.BootId, pb.Sequence = flowbatch.MajorVersion, s.cfg.ExporterID, s.bootID, 1
	fb := flowbatch.FromPB(pb)
	enc := flowbatch.NewEncoder()
	max := s.cfg.UDPMaxBytes - headerRoom
	out := s.encodeChunks(enc, &flowbatch.Batch{Records: fb.Records}, max)
	return append(out, s.encodeChunks(enc, &flowbatch.Batch{Aggregates: fb.Aggregates}, max)...)
}

// settle applies the acknowledgements; true when some batches must be retried later.
func (s *Shipper) settle(transport string, bs []*outBatch, acks []*flowv1.Ack) (retry bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range bs {
		var a *flowv1.Ack
		if i < len(acks) {
			a = acks[i]
		}
		switch {
		case a == nil:
			b.inflight = false
			retry = true
		case a.Status == flowv1.Ack_STATUS_ACCEPTED || a.Status == flowv1.Ack_STATUS_DUPLICATE:
			s.m.acked.WithLabelValues(transport, statusName(a.Status)).Inc()
			s.stats.BatchesAcked++
			s.q.done(b)
			recycle(b.data) // acknowledged: every link has finished writing it
		case a.Retryable:
			s.m.acked.WithLabelValues(transport, "retry").Inc()
			b.inflight = false
			retry = true
		default:
			s.m.acked.WithLabelValues(transport, "rejected").Inc()
			s.log.Error("collector rejected a batch; dropping it", "seq", b.seq, "reason", flowbatch.ReasonName(a.Reason), "message", a.Message)
			s.q.done(b)
			s.dropLocked(b, "rejected")
		}
	}
	return retry
}

func statusName(st flowv1.Ack_Status) string {
	if st == flowv1.Ack_STATUS_DUPLICATE {
		return "duplicate"
	}
	return "accepted"
}

// backoff is RetryMin doubled per consecutive failure up to RetryMax, with ±50% jitter.
func (s *Shipper) backoff(failures int) time.Duration {
	d := s.cfg.RetryMin
	for i := 1; i < failures && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.RetryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
