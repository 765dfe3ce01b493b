module github.com/flowscope/flowscope

go 1.26.8

tool github.com/cilium/ebpf/cmd/bpf2go

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/sys v0.50.0
)

require (
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
