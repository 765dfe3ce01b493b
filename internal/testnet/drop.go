package testnet

import (
	"errors"
	"fmt"
	"math"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// DropConfig says what the drop program drops on the device's ingress (a receive path, so the
// sender's TCP sees the loss and retransmits; drops at local egress cause no retransmits).
type DropConfig struct {
	// PayloadFraction of the TCP packets carrying payload to drop at random, 0..1. Packets are
	// counted as the device receives them: over veth a GSO packet may carry many segments.
	PayloadFraction float64
	// PayloadEvery, when non-zero, drops every Nth payload packet instead (PayloadFraction is
	// then ignored), so a test sees at least one drop whenever N packets pass.
	PayloadEvery uint32
	// Port, when non-zero, limits payload drops to packets from or to this TCP port.
	Port uint16
	// SYNPort, when non-zero, drops every SYN (without ACK) to this destination port, so
	// connects to it time out.
	SYNPort uint16
}

// DropCounts is what the drop program has seen since it was attached.
type DropCounts struct {
	TCP            uint64 // TCP packets received
	Payload        uint64 // TCP packets with payload (matching Port, when set)
	PayloadDropped uint64 // of which dropped
	SYN            uint64 // SYNs received
	SYNDropped     uint64 // of which dropped (to SYNPort)
}

// Dropper is the drop program attached with TCX to a device's ingress inside a namespace.
type Dropper struct {
	objs dropObjects
	link link.Link
}

// NewDropper attaches the drop program to dev's ingress in ns and detaches it when the test ends.
func NewDropper(t testing.TB, ns *Netns, dev string, cfg DropConfig) *Dropper {
	t.Helper()
	v, err := CreateDropper(ns, dev, cfg)
	return closeAtEnd(t, v, err)
}

// CreateDropper loads the drop program and attaches it with TCX to dev's ingress inside ns;
// the caller must Close it.
func CreateDropper(ns *Netns, dev string, cfg DropConfig) (_ *Dropper, err error) {
	d := &Dropper{}
	if err := loadDropObjects(&d.objs, nil); err != nil {
		return nil, fmt.Errorf("loading drop program: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
		}
	}()
	if err := d.Set(cfg); err != nil {
		return nil, err
	}
	err = ns.Do(func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return fmt.Errorf("finding %s: %w", dev, err)
		}
		d.link, err = link.AttachTCX(link.TCXOptions{
			Interface: ifc.Index,
			Program:   d.objs.DropIngress,
			Attach:    ebpf.AttachTCXIngress,
		})
		if err != nil {
			return fmt.Errorf("attaching drop program to %s ingress: %w", dev, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Set changes what is dropped, effective for the next packet.
func (d *Dropper) Set(cfg DropConfig) error {
	if cfg.PayloadFraction < 0 || cfg.PayloadFraction > 1 || math.IsNaN(cfg.PayloadFraction) {
		return fmt.Errorf("drop fraction %v: want 0..1", cfg.PayloadFraction)
	}
	v := dropDropSettings{
		PayloadThreshold: uint64(math.Round(cfg.PayloadFraction * (1 << 32))),
		Port:             cfg.Port,
		SynPort:          cfg.SYNPort,
		PayloadEvery:     cfg.PayloadEvery,
	}
	if err := d.objs.DropConfig.Put(uint32(0), v); err != nil {
		return fmt.Errorf("configuring drop program: %w", err)
	}
	return nil
}

// Counts reads the program's counters (summed over CPUs).
func (d *Dropper) Counts() (DropCounts, error) {
	var sums [5]uint64
	for i := range sums {
		var perCPU []uint64
		if err := d.objs.DropCounters.Lookup(uint32(i), &perCPU); err != nil {
			return DropCounts{}, fmt.Errorf("reading drop counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			sums[i] += v
		}
	}
	return DropCounts{TCP: sums[0], Payload: sums[1], PayloadDropped: sums[2], SYN: sums[3], SYNDropped: sums[4]}, nil
}

// Close detaches and unloads the program.
func (d *Dropper) Close() error {
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
		d.link = nil
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}
