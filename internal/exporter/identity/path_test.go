package identity

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/flow"
)

const (
	uid  = "0f3c5a8e-7b1d-4c2e-9a6f-1d2e3f4a5b6c"
	uidU = "0f3c5a8e_7b1d_4c2e_9a6f_1d2e3f4a5b6c" // as the systemd driver writes it
	cid  = "4c0c7bd7c6c1e2e35a4a2f1e0a5b8a3e9d1f2c3b4a5968778695a4b3c2d1e0f9"
	sid  = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d" // a pod sandbox
	// a static pod's UID is a hash without dashes
	staticUID = "6f1c2a3b4d5e6f708192a3b4c5d6e7f8"
)

func podWorkload(path, podUID, id, rt, unit string) flow.Workload {
	return flow.Workload{Kind: flow.KindPod, PodUID: podUID, ContainerID: id, Runtime: rt, Unit: unit, CgroupPath: path}
}

func TestParseCgroupPath(t *testing.T) {
	type tc struct {
		name, in string
		want     flow.Workload
	}
	var cases []tc
	add := func(name, in string, want flow.Workload) { cases = append(cases, tc{name, in, want}) }
	// want builds the expected pod workload for a path p.
	podAt := func(p, id, rt, unit string) flow.Workload { return podWorkload(p, uid, id, rt, unit) }

	// kubelet, systemd driver, cgroup v2 (what sk_cgrp_data names) — every runtime and QoS class.
	for _, r := range []struct{ scope, rt string }{
		{"cri-containerd-", RuntimeContainerd}, {"crio-", RuntimeCRIO}, {"docker-", RuntimeDocker}, {"cri-dockerd-", RuntimeDocker},
	} {
		for _, qos := range []struct{ name, dir string }{
			{"burstable", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice"},
			{"besteffort", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice"},
			{"guaranteed", "/kubepods.slice/kubepods-pod" + uidU + ".slice"},
		} {
			p := qos.dir + "/" + r.scope + cid + ".scope"
			add("systemd "+r.rt+" "+qos.name, p, podAt(p, cid, r.rt, r.scope+cid+".scope"))
		}
	}
	// kubelet, cgroupfs driver: the container is a bare id (runtime unknown), CRI-O prefixes it.
	for _, qos := range []string{"/kubepods/burstable/pod" + uid, "/kubepods/besteffort/pod" + uid, "/kubepods/pod" + uid} {
		p := qos + "/" + cid
		add("cgroupfs bare id "+qos, p, podAt(p, cid, "", ""))
		p = qos + "/crio-" + cid
		add("cgroupfs crio "+qos, p, podAt(p, cid, RuntimeCRIO, ""))
	}
	// cgroup v1: /proc/PID/cgroup lines carry the hierarchy and controllers.
	v1 := "/kubepods/burstable/pod" + uid + "/" + cid
	add("v1 memory line", "4:memory:"+v1, podAt(v1, cid, "", ""))
	add("v1 cpu,cpuacct line", "7:cpu,cpuacct:"+v1, podAt(v1, cid, "", ""))
	v1s := "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/docker-" + cid + ".scope"
	add("v1 systemd named line", "1:name=systemd:"+v1s, podAt(v1s, cid, RuntimeDocker, "docker-"+cid+".scope"))
	add("v2 line", "0::"+v1s, podAt(v1s, cid, RuntimeDocker, "docker-"+cid+".scope"))
	// CRI-O's conmon and crun's nested "container" cgroup.
	p := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-conmon-" + cid + ".scope"
	add("crio conmon", p, podAt(p, cid, RuntimeCRIO, "crio-conmon-"+cid+".scope"))
	p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + cid + ".scope/container"
	add("crio nested container", p, podAt(p, cid, RuntimeCRIO, "crio-"+cid+".scope"))
	// The pod level itself, and a sandbox (pause) container, which the path cannot tell apart
	// from an app container.
	p = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice"
	add("pod slice", p, podAt(p, "", "", ""))
	p = "/kubepods/besteffort/pod" + uid
	add("cgroupfs pod dir", p, podAt(p, "", "", ""))
	p = "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + sid + ".scope"
	add("sandbox", p, podAt(p, sid, RuntimeContainerd, "cri-containerd-"+sid+".scope"))
	p = "/kubepods/pod" + uid + "/not-a-container"
	add("unknown child of a pod", p, podAt(p, "", "", ""))
	p = "/kubepods.slice/kubepods-pod" + staticUID + ".slice/cri-containerd-" + cid + ".scope"
	add("static pod uid", p, podWorkload(p, staticUID, cid, RuntimeContainerd, "cri-containerd-"+cid+".scope"))
	// Nested: kind (kubelet.slice inside a node container), k3s/kind cgroupfs, a test prefix.
	p = "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope"
	add("kind systemd", p, podAt(p, cid, RuntimeContainerd, "cri-containerd-"+cid+".scope"))
	p = "/system.slice/docker-" + sid + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope"
	add("kind seen from the host", p, podAt(p, cid, RuntimeContainerd, "cri-containerd-"+cid+".scope"))
	p = "/kubelet/kubepods/burstable/pod" + uid + "/" + cid
	add("kind cgroupfs", p, podAt(p, cid, "", ""))
	p = "/docker/" + sid + "/kubepods/besteffort/pod" + uid + "/" + cid
	add("k3d: k3s in docker, cgroupfs", p, podAt(p, cid, "", ""))
	p = "/fst-123-abcd/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope"
	add("test prefix", p, podAt(p, cid, RuntimeContainerd, "cri-containerd-"+cid+".scope"))
	p = "/kubepods/burstable/POD" + strings.ToUpper(uid) + "/" + cid
	add("upper case is not a pod", p, flow.Workload{Kind: flow.KindCgroup, CgroupPath: p})

	// Containers outside Kubernetes.
	p = "/system.slice/docker-" + cid + ".scope"
	add("docker systemd", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimeDocker, Unit: "docker-" + cid + ".scope", CgroupPath: p})
	p = "/docker/" + cid
	add("docker cgroupfs", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimeDocker, CgroupPath: p})
	add("docker cgroupfs v1", "9:pids:"+p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimeDocker, CgroupPath: p})
	p = "/machine.slice/libpod-" + cid + ".scope"
	add("podman rootful", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimePodman, Unit: "libpod-" + cid + ".scope", CgroupPath: p})
	p = "/machine.slice/libpod-" + cid + ".scope/container"
	add("podman nested", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimePodman, Unit: "libpod-" + cid + ".scope", CgroupPath: p})
	p = "/machine.slice/libpod-conmon-" + cid + ".scope"
	add("podman conmon", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimePodman, Unit: "libpod-conmon-" + cid + ".scope", CgroupPath: p})
	p = "/machine.slice/machine-libpod_pod_" + sid[:12] + ".slice/libpod-" + cid + ".scope"
	add("podman pod", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimePodman, Unit: "libpod-" + cid + ".scope", CgroupPath: p})
	p = "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + cid + ".scope"
	add("podman rootless", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimePodman, Unit: "libpod-" + cid + ".scope", CgroupPath: p})
	p = "/user.slice/user-1000.slice/user@1000.service/docker.service/docker/" + cid
	add("rootless docker", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimeDocker, Unit: "docker.service", CgroupPath: p})
	p = "/libpod_parent/libpod-" + cid
	add("podman cgroupfs", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimePodman, CgroupPath: p})
	p = "/system.slice/nerdctl-" + cid + ".scope"
	add("nerdctl", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimeContainerd, Unit: "nerdctl-" + cid + ".scope", CgroupPath: p})
	p = "/system.slice/docker-" + cid + ".scope/system.slice/nginx.service"
	add("service inside a container", p, flow.Workload{Kind: flow.KindContainer, ContainerID: cid, Runtime: RuntimeDocker, Unit: "nginx.service", CgroupPath: p})

	// systemd units, scopes and sessions.
	unit := func(p, u string) flow.Workload { return flow.Workload{Kind: flow.KindUnit, Unit: u, CgroupPath: p} }
	add("service", "/system.slice/nginx.service", unit("/system.slice/nginx.service", "nginx.service"))
	add("service v1", "1:name=systemd:/system.slice/nginx.service", unit("/system.slice/nginx.service", "nginx.service"))
	add("service sub-cgroup", "/system.slice/nginx.service/workers", unit("/system.slice/nginx.service/workers", "nginx.service"))
	add("templated service", "/system.slice/system-getty.slice/getty@tty1.service", unit("/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"))
	add("escaped service", `/system.slice/system-systemd\x2dfsck.slice/systemd-fsck@dev-vda1.service`, unit(`/system.slice/system-systemd\x2dfsck.slice/systemd-fsck@dev-vda1.service`, "systemd-fsck@dev-vda1.service"))
	add("containerd itself", "/system.slice/containerd.service", unit("/system.slice/containerd.service", "containerd.service"))
	add("kubelet itself", "/system.slice/kubelet.service", unit("/system.slice/kubelet.service", "kubelet.service"))
	add("docker daemon", "/system.slice/docker.service", unit("/system.slice/docker.service", "docker.service"))
	add("init scope", "/init.scope", unit("/init.scope", "init.scope"))
	add("session", "/user.slice/user-1000.slice/session-3.scope", unit("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"))
	add("user manager", "/user.slice/user-1000.slice/user@1000.service/init.scope", unit("/user.slice/user-1000.slice/user@1000.service/init.scope", "init.scope"))
	add("user app", "/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1234.scope", unit("/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1234.scope", "app-firefox-1234.scope"))
	add("user service", "/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service", unit("/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service", "pipewire.service"))
	add("run scope", "/system.slice/run-r1b2c3.scope", unit("/system.slice/run-r1b2c3.scope", "run-r1b2c3.scope"))
	add("nspawn machine", "/machine.slice/machine-debian.scope", unit("/machine.slice/machine-debian.scope", "machine-debian.scope"))
	add("docker scope with short non-hex id", "/system.slice/docker-xyz.scope", unit("/system.slice/docker-xyz.scope", "docker-xyz.scope"))

	// Host, unknown shapes and odd input.
	host := flow.Workload{Kind: flow.KindHost, CgroupPath: "/"}
	add("root", "/", host)
	add("root v2 line", "0::/", host)
	add("root v1 line", "3:cpuset:/", host)
	add("empty", "", flow.Workload{Kind: flow.KindUnknown})
	add("slice only", "/system.slice", flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/system.slice"})
	add("custom", "/process_api/8a7b2edde7f2e47d27e6dee07728915f", flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/process_api/8a7b2edde7f2e47d27e6dee07728915f"})
	add("kubepods top", "/kubepods.slice", flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/kubepods.slice"})
	add("kubepods qos", "/kubepods/burstable", flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/kubepods/burstable"})
	add("pod without kubepods", "/pod"+uid+"/"+cid, flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/pod" + uid + "/" + cid})
	add("no leading slash", "system.slice/cron.service", unit("/system.slice/cron.service", "cron.service"))
	add("dots", "/a/../system.slice/./cron.service/", unit("/system.slice/cron.service", "cron.service"))
	add("short uid", "/kubepods/podabc/"+cid, flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/kubepods/podabc/" + cid})
	add("bare scope suffix", "/.scope", flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/.scope"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, ParseCgroupPath(c.in)); diff != "" {
				t.Errorf("ParseCgroupPath(%q) mismatch (-want +got):\n%s", c.in, diff)
			}
		})
	}
}

func FuzzParseCgroupPath(f *testing.F) {
	for _, s := range []string{
		"/", "", "0::/", "/kubepods/burstable/pod" + uid + "/" + cid,
		"/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-" + cid + ".scope",
		"/system.slice/docker-" + cid + ".scope", "/user.slice/user-1000.slice/session-3.scope",
		"4:memory:/docker/" + cid, "::", "1:", "/kubepods/pod", "/kubepods-pod.slice",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		w := ParseCgroupPath(in)
		switch w.Kind {
		case flow.KindPod:
			if w.PodUID == "" {
				t.Errorf("%q: pod without UID: %+v", in, w)
			}
		case flow.KindContainer:
			if w.ContainerID == "" || w.Runtime == "" {
				t.Errorf("%q: container without id or runtime: %+v", in, w)
			}
		case flow.KindUnit:
			if w.Unit == "" {
				t.Errorf("%q: unit without a name: %+v", in, w)
			}
		case flow.KindHost, flow.KindCgroup:
			if !strings.HasPrefix(w.CgroupPath, "/") {
				t.Errorf("%q: path %q is not absolute", in, w.CgroupPath)
			}
		case flow.KindUnknown:
		default:
			t.Errorf("%q: unexpected kind %q", in, w.Kind)
		}
	})
}
