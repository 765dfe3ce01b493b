#!/usr/bin/env bash
# Builds kube-apiserver v1.37.2 from the Go module proxy for the attribution tests
# (internal/collector/kube), in a throw-away module that requires k8s.io/kubernetes and replaces
# every staging module with its v0.37.2 release. The binary lands in $FLOWSCOPE_KUBE_BIN
# (default /var/cache/flowscope/kube/bin) next to a link to etcd (Debian's etcd-server, from
# .ci/packages/kube.txt). Idempotent: does nothing when the binaries are there. Cold: ~13 min.
set -euo pipefail
KUBE_VERSION=1.37.2
STAGING_VERSION=0.37.2
BIN="${FLOWSCOPE_KUBE_BIN:-/var/cache/flowscope/kube/bin}"
mkdir -p "$BIN"

if [ ! -x "$BIN/etcd" ]; then
  if [ -x /usr/bin/etcd ]; then
    ln -sf /usr/bin/etcd "$BIN/etcd"
  else
    echo "50-kube: /usr/bin/etcd missing (Debian package etcd-server)" >&2
    exit 1
  fi
fi

if [ -x "$BIN/kube-apiserver" ] && "$BIN/kube-apiserver" --version 2>/dev/null | grep -q "v$KUBE_VERSION"; then
  echo "50-kube: kube-apiserver v$KUBE_VERSION present in $BIN"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
  kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver streaming)
{
  echo "module flowscope.local/kubebuild"
  echo
  echo "go 1.26"
  echo
  echo "require k8s.io/kubernetes v$KUBE_VERSION"
  echo
  for m in "${staging[@]}"; do
    echo "replace k8s.io/$m => k8s.io/$m v$STAGING_VERSION"
  done
} > go.mod
echo "50-kube: resolving k8s.io/kubernetes v$KUBE_VERSION"
GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION"
echo "50-kube: building kube-apiserver (cold build takes ~13 min)"
GOFLAGS=-mod=mod go build -o "$BIN/kube-apiserver.new" \
  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
  k8s.io/kubernetes/cmd/kube-apiserver
mv "$BIN/kube-apiserver.new" "$BIN/kube-apiserver"
"$BIN/kube-apiserver" --version
