#!/bin/sh
# Regenerates flow.pb.go and flow_grpc.pb.go with Debian's protoc and the plugin versions
# pinned as tools in go.mod (run through `go tool`, so nothing needs to be on PATH).
set -eu
cd "$(dirname "$0")"
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
printf '#!/bin/sh\nexec go tool protoc-gen-go "$@"\n' >"$d/protoc-gen-go"
printf '#!/bin/sh\nexec go tool protoc-gen-go-grpc "$@"\n' >"$d/protoc-gen-go-grpc"
chmod +x "$d/protoc-gen-go" "$d/protoc-gen-go-grpc"
protoc --proto_path=. \
  --plugin=protoc-gen-go="$d/protoc-gen-go" --plugin=protoc-gen-go-grpc="$d/protoc-gen-go-grpc" \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  flow.proto
