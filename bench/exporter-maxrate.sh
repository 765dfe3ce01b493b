#!/usr/bin/env bash
# Drives as many loopback connections as one Python client can open in 10 s (connect, 1 KiB
# request, 4 KiB response, close) against a running exporter, then prints the connections,
# the exporter's flow records for them (two per connection: none lost means equal), and the
# exporter's CPU per record (all threads, scheduler accounting in ns).
#   usage: sudo bench/exporter-maxrate.sh [path/to/flowscope] [extra exporter flags...]
set -euo pipefail
bin=${1:-./flowscope}; shift || true
out=$(mktemp -d)
"$bin" exporter --metrics-listen= --summary-interval=0 "$@" > "$out/records" 2>"$out/log" & pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
sleep 3
cpu() { awk '{s+=$1} END {print s}' /proc/$pid/task/*/schedstat; }
a=$(cpu)
python3 - "$out/n" <<'EOF'
import socket, sys, threading, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(1024); port = srv.getsockname()[1]
def serve():
    while True:
        c, _ = srv.accept(); c.recv(1024); c.sendall(b'x' * 4096); c.close()
threading.Thread(target=serve, daemon=True).start()
t, n = time.time(), 0
while time.time() - t < 10:
    c = socket.create_connection(('127.0.0.1', port)); c.sendall(b'y' * 1024); c.recv(8192); c.close(); n += 1
open(sys.argv[1], "w").write(f"{n} {port}\n")
EOF
sleep 1
b=$(cpu)
kill $pid; wait $pid 2>/dev/null || true
read -r n port < "$out/n"
recs=$(grep -c -E "\"(local|remote)_port\":$port," "$out/records" || true)
echo "connections=$n ($((n / 10))/s) records=$recs (want $((2 * n))) exporter_cpu_ns_per_record=$(( (b - a) / (2 * n) ))"
