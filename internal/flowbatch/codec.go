package flowbatch

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Raw is an encoded Batch carried through gRPC without being decoded or re-encoded: the
// exporter encodes a batch once and keeps the bytes for retries; the collector stores the
// bytes it received.
type Raw struct{ Data []byte }

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
