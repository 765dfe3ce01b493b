package testnet

//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target amd64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type drop_settings drop ../../bpf/testnet/drop.c
