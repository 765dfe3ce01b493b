package flowbatch

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Raw is an encoded Batch carried through gRPC without being decoded or re-encoded: the
// exporter encodes a batch once and keeps the bytes for retries; the collector stores the
// bytes it received.
type Raw struct {
	Data []byte
	buf  *[]byte // Data's recycled memory (GRPCServerCodec), nil otherwise
}

// Release hands Data's memory back for reuse by later messages; neither Data nor anything
// sliced from it may be used afterwards. Releasing a Raw that was not pooled does nothing.
func (r *Raw) Release() {
	if r.buf != nil {
		rawBuffers.Put(r.buf)
	}
	r.Data, r.buf = nil, nil
}

// rawBuffers recycles the collector's receive buffers: without it every batch costs a
// fresh zeroed allocation of its size, and the garbage collection of it.
var rawBuffers sync.Pool

func rawBuffer(n int) *[]byte {
	if b, ok := rawBuffers.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// GRPCCodec is the gRPC codec of the flow service: *Raw passes through untouched, other
// messages (acknowledgements) use protobuf. It is named "proto", so clients built from the
// generated stubs interoperate.
type GRPCCodec struct{}

// Marshal implements encoding.Codec.
func (GRPCCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *Raw:
		return m.Data, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("flow codec cannot encode %T", v)
}

// Unmarshal implements encoding.Codec; data is not retained by gRPC afterwards.
func (GRPCCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *Raw:
		m.Data = data
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("flow codec cannot decode into %T", v)
}

// Name implements encoding.Codec.
func (GRPCCodec) Name() string { return "proto" }

// GRPCServerCodec is GRPCCodec for the collector's server: a received *Raw is copied into
// recycled memory, which the receiver gives back with Release once it has stored the batch.
type GRPCServerCodec struct{}

// Marshal implements encoding.CodecV2.
func (GRPCServerCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := GRPCCodec{}.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal implements encoding.CodecV2.
func (GRPCServerCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*Raw); ok {
		m.buf = rawBuffer(data.Len())
		data.CopyTo(*m.buf)
		m.Data = *m.buf
		return nil
	}
	return GRPCCodec{}.Unmarshal(data.Materialize(), v)
}

// Name implements encoding.CodecV2.
func (GRPCServerCodec) Name() string { return "proto" }
