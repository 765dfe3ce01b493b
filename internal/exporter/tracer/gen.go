package tracer

//go:generate go tool bpf2go -cc clang-14 -target amd64 -type flow_event -type slot flowscope ../../../bpf/flow.c -- -I../../../bpf -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
