package tracer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attachState attaches inet_sock_set_state with the best hook the kernel accepts.
func (t *Tracer) attachState(spec *ebpf.CollectionSpec) error {
	order := []Hook{HookTPBTF, HookRawTP, HookTracepoint}
	if t.cfg.Hook != HookAuto {
		order = []Hook{t.cfg.Hook}
	}
	var errs []error
	for _, h := range order {
		l, err := t.attachStateHook(spec, h)
		if err == nil {
			t.links = append(t.links, l)
			t.hook = h
			if h != HookTPBTF {
				t.degrade(fmt.Sprintf("inet_sock_set_state via %s: opens are sent as events (higher cost), conn_id is not the socket cookie, no pid/comm", h), errors.Join(errs...))
			}
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", h, err))
	}
	return fmt.Errorf("attaching to inet_sock_set_state (no usable hook): %w", errors.Join(errs...))
}

func (t *Tracer) attachStateHook(spec *ebpf.CollectionSpec, h Hook) (link.Link, error) {
	switch h {
	case HookTPBTF:
		p, err := t.loadProgram(spec, "state_btf")
		if err != nil {
			return nil, err
		}
		return link.AttachTracing(link.TracingOptions{Program: p})
	case HookRawTP:
		p, err := t.loadProgram(spec, "state_raw")
		if err != nil {
			return nil, err
		}
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: "inet_sock_set_state", Program: p})
	case HookTracepoint:
		p, err := t.loadProgram(spec, "state_tp")
		if err != nil {
			return nil, err
		}
		return link.Tracepoint("sock", "inet_sock_set_state", p, nil)
	}
	return nil, fmt.Errorf("unknown hook %q", h)
}

// attachOptional attaches the signal tracepoints, the connect hooks and the iterator. Each
// failure degrades one feature with a warning; none is fatal.
func (t *Tracer) attachOptional(spec *ebpf.CollectionSpec) {
	signals := []struct{ prog, what string }{
		{"retransmit_btf", "tcp_retransmit_skb signal: retransmit events are not counted (per-flow retransmits still come from the socket)"},
		{"send_reset_btf", "tcp_send_reset signal: resets_sent is inferred from the close state only"},
		{"receive_reset_btf", "tcp_receive_reset signal: resets_received is inferred from the socket error only"},
	}
	for _, s := range signals {
		p, err := t.loadProgram(spec, s.prog)
		if err == nil {
			var l link.Link
			if l, err = link.AttachTracing(link.TracingOptions{Program: p}); err == nil {
				t.links = append(t.links, l)
				continue
			}
		}
		t.degrade(s.what, err)
	}
	if t.cfg.ProcessInfo && t.hook == HookTPBTF {
		t.attachConnect(spec)
	}
	p, err := t.loadProgram(spec, "iter_tcp")
	if err == nil {
		t.iter, err = link.AttachIter(link.IterOptions{Program: p})
	}
	if err != nil {
		t.degrade("iter/tcp: sockets open before start are not reported and long-lived connections get no interim records", err)
	}
}

func (t *Tracer) attachConnect(spec *ebpf.CollectionSpec) {
	if t.cfg.CgroupV2 == "" {
		t.degrade("cgroup connect hooks: no cgroup v2 mount, so no pid/comm for client sockets", nil)
		return
	}
	for _, c := range []struct {
		prog string
		typ  ebpf.AttachType
	}{{"connect4", ebpf.AttachCGroupInet4Connect}, {"connect6", ebpf.AttachCGroupInet6Connect}} {
		p, err := t.loadProgram(spec, c.prog)
		if err == nil {
			var l link.Link
			l, err = link.AttachCgroup(link.CgroupOptions{Path: t.cfg.CgroupV2, Attach: c.typ, Program: p})
			if err == nil {
				t.links = append(t.links, l)
				continue
			}
		}
		t.degrade(fmt.Sprintf("cgroup/%s on %s: no pid/comm for client sockets", c.prog, t.cfg.CgroupV2), err)
	}
}

func (t *Tracer) degrade(what string, err error) {
	t.degraded = append(t.degraded, what)
	if errors.Is(err, os.ErrPermission) {
		t.log.Warn("kernel feature unavailable (permission denied), degraded", "feature", what, "error", err)
		return
	}
	t.log.Warn("kernel feature unavailable, degraded", "feature", what, "error", err)
}
