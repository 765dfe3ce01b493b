package identity

import (
	"path"
	"strings"

	"github.com/flowscope/flowscope/internal/flow"
)

// Runtime names, as flow.Workload.Runtime carries them.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// scopePrefixes are the cgroup names container runtimes give a container: with the systemd
// driver "<prefix><id>.scope", with cgroupfs "<prefix><id>" (or the bare id). Longer prefixes
// come first so that "crio-conmon-" wins over "crio-".
var scopePrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", RuntimeContainerd},
	{"crio-conmon-", RuntimeCRIO},
	{"crio-", RuntimeCRIO},
	{"cri-dockerd-", RuntimeDocker},
	{"docker-", RuntimeDocker},
	{"libpod-conmon-", RuntimePodman},
	{"libpod-", RuntimePodman},
	{"nerdctl-", RuntimeContainerd},
}

// ParseCgroupPath names the workload that a cgroup path belongs to. It understands the kubelet
// layouts (systemd and cgroupfs drivers, every QoS class, nested under kind/k3s or a test
// prefix), container runtimes outside Kubernetes (Docker, podman, nerdctl), systemd services,
// scopes and user sessions, and the root cgroup. The path may be a cgroup v2 path or a v1 line
// of /proc/PID/cgroup ("4:memory:/kubepods/..."). Anything else is KindCgroup with the path,
// and an empty path is KindUnknown. It never fails.
func ParseCgroupPath(p string) flow.Workload {
	p = stripV1Prefix(strings.TrimSpace(p))
	if p == "" {
		return flow.Workload{Kind: flow.KindUnknown}
	}
	p = path.Clean("/" + p)
	if p == "/" {
		return flow.Workload{Kind: flow.KindHost, CgroupPath: "/"}
	}
	parts := strings.Split(p[1:], "/")
	w := flow.Workload{Kind: flow.KindCgroup, CgroupPath: p}
	w.Unit = innermostUnit(parts)
	if pod(parts, &w) || container(parts, &w) {
		return w
	}
	if w.Unit != "" {
		w.Kind = flow.KindUnit
	}
	return w
}

// stripV1Prefix removes the "HIERARCHY:CONTROLLERS:" of a /proc/PID/cgroup line.
func stripV1Prefix(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	id, rest, ok := strings.Cut(p, ":")
	if !ok || id == "" || strings.Trim(id, "0123456789") != "" {
		return p
	}
	if _, after, ok := strings.Cut(rest, ":"); ok {
		return after
	}
	return p
}

// pod recognises a kubelet pod cgroup anywhere in parts: a "kubepods" level followed by a pod
// level, then optionally a container.
func pod(parts []string, w *flow.Workload) bool {
	kube := -1
	for i, c := range parts {
		if isKubepods(c) {
			kube = i
			break
		}
	}
	if kube < 0 {
		return false
	}
	for i := kube; i < len(parts); i++ {
		uid, ok := podUID(parts[i])
		if !ok {
			continue
		}
		w.Kind, w.PodUID, w.Unit = flow.KindPod, uid, ""
		if i+1 < len(parts) {
			w.ContainerID, w.Runtime = containerName(parts[i+1], true)
			if w.ContainerID != "" && strings.HasSuffix(parts[i+1], ".scope") {
				w.Unit = parts[i+1]
			}
		}
		return true
	}
	return false
}

// isKubepods reports whether a component is kubelet's top-level pods cgroup or one of its QoS
// levels: "kubepods", "kubepods.slice", "kubelet-kubepods.slice" (kind), "kubepods-burstable.slice".
func isKubepods(c string) bool {
	c = strings.TrimSuffix(c, ".slice")
	c = strings.TrimPrefix(c, "kubelet-")
	return c == "kubepods" || strings.HasPrefix(c, "kubepods-")
}

// podUID extracts the pod UID from a pod-level component: "pod<uid>" (cgroupfs) or
// "[kubelet-]kubepods[-<qos>]-pod<uid with _ for ->.slice" (systemd).
func podUID(c string) (string, bool) {
	c = strings.TrimSuffix(c, ".slice")
	i := strings.LastIndex(c, "pod")
	if i < 0 || (i > 0 && c[i-1] != '-') {
		return "", false
	}
	if i > 0 && !strings.HasPrefix(strings.TrimPrefix(c, "kubelet-"), "kubepods-") {
		return "", false
	}
	uid := strings.ReplaceAll(c[i+3:], "_", "-")
	if len(uid) < 32 || len(uid) > 36 || strings.Trim(uid, "0123456789abcdefABCDEF-") != "" {
		return "", false
	}
	return strings.ToLower(uid), true
}

// container recognises a container runtime's cgroup outside Kubernetes: the outermost
// component that a runtime named (docker-<id>.scope, libpod-<id>.scope, /docker/<id>, ...).
func container(parts []string, w *flow.Workload) bool {
	for i, c := range parts {
		id, rt := containerName(c, false)
		if id == "" && i > 0 {
			id, rt = bareUnder(parts[i-1], c)
		}
		if id == "" {
			continue
		}
		w.Kind, w.ContainerID, w.Runtime = flow.KindContainer, id, rt
		return true
	}
	return false
}

// bareUnder recognises Docker's cgroupfs driver, which names a container "/docker/<id>".
func bareUnder(parent, c string) (string, string) {
	if parent == "docker" && isContainerID(c) {
		return c, RuntimeDocker
	}
	return "", ""
}

// containerName returns the container id and runtime a cgroup component names:
// "<prefix><id>[.scope]" for a known runtime prefix or, when bare is true (directly under a
// pod), a bare id (runtime unknown).
func containerName(c string, bare bool) (id, runtime string) {
	name := strings.TrimSuffix(c, ".scope")
	for _, sp := range scopePrefixes {
		if rest, ok := strings.CutPrefix(name, sp.prefix); ok && isContainerID(rest) {
			return strings.ToLower(rest), sp.runtime
		}
	}
	if bare && isContainerID(name) {
		return strings.ToLower(name), ""
	}
	return "", ""
}

// isContainerID reports whether s looks like a container id: 12 to 128 hex digits (runtimes
// use 64).
func isContainerID(s string) bool {
	return len(s) >= 12 && len(s) <= 128 && strings.Trim(s, "0123456789abcdefABCDEF") == ""
}

// innermostUnit returns the last component that is a systemd service or scope, "" if none.
func innermostUnit(parts []string) string {
	for i := len(parts) - 1; i >= 0; i-- {
		c := parts[i]
		if (strings.HasSuffix(c, ".service") || strings.HasSuffix(c, ".scope")) && len(c) > len(".scope") {
			return c
		}
	}
	return ""
}
