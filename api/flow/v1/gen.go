// Package flowv1 is the wire format between the flowscope exporter and collector: protobuf
// messages for flow records, batches, ownership heartbeats and acknowledgements, and the gRPC
// service. The .proto file is importable by third parties; the Go code is generated from it.
package flowv1

//go:generate sh generate.sh
