//go:build ignore

/* flowscope exporter: one record per TCP connection and side, emitted when the socket enters
 * TCP_CLOSE, from the inet_sock_set_state tracepoint (tp_btf, or raw_tracepoint / tracepoint as
 * fallbacks). Per-socket state is a single direct-mapped slot holding the start time, so the hot
 * path is: 6 of the 10 state changes of a connection exit at once, 2 write a slot, 2 emit a
 * record. Long-lived and pre-existing sockets are read by the iter/tcp program. */

#include "include/kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

/* Set from Go before load. slot_mask is the slot count minus one (a power of two). A ring
 * submit wakes the reader only when more than wake_bytes are queued: wakeups are expensive. */
volatile const __u32 slot_mask = 65535;
volatile const __u64 wake_bytes = 1 << 20;
/* connect()'s local port range (net.ipv4.ip_local_port_range) */
volatile const __u16 eph_lo = 32768;
volatile const __u16 eph_hi = 60999;

enum event_kind {
	EV_CLOSE = 1,       /* a socket entered TCP_CLOSE: final counters */
	EV_OPEN = 2,        /* fallback hooks only: a socket opened (no slots there) */
	EV_RESET_SENT = 3,  /* this socket sent a RST */
	EV_SNAPSHOT = 4,    /* iter/tcp: an open socket's counters */
	EV_LISTEN = 5,      /* iter/tcp: a listening socket */
};

enum event_flags {
	F_ACTIVE = 1,       /* active open (connect) */
	F_PASSIVE = 2,      /* passive open (accept) */
	F_START_KNOWN = 4,  /* start_ns is the observed open */
	F_FIN_RCVD = 8,     /* the peer's FIN was received in order (SOCK_DONE) */
	F_FIN_ACKED = 16,   /* our FIN was sent and acknowledged */
	F_PROC = 32,        /* pid and comm captured in process context (connect, or close) */
};

enum counter {
	C_CLOSE,
	C_RING_FULL,
	C_SLOT_COLLISION,
	C_START_MISS,
	C_RETRANS,
	C_RESET_SENT,
	C_RESET_RECV,
	C_OPEN,
	C_CONNECT,
	C_ITER_SOCK,
	C_CLOSER,
	C_MAX,
};

struct slot {
	__u64 key; /* socket cookie */
	__u64 start_ns;
	__u32 pid;
	__u16 flags;
	__u16 resets_received;
	char comm[16];
};

struct flow_event {
	__u64 key;     /* socket cookie (tp_btf, iter) or socket address (fallback hooks) */
	__u64 skaddr;
	__u64 start_ns;
	__u64 end_ns;
	__u64 cgroup_id;
	__u64 bytes_acked;
	__u64 bytes_received;
	__u64 bytes_retrans;
	__u32 netns;
	__u32 segs_out;
	__u32 segs_in;
	__u32 total_retrans;
	__u32 srtt_us;
	__u32 min_rtt_us;
	__u32 pid;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 flags;
	__u16 sk_err;
	__u8 kind;
	__u8 state;   /* the state left for CLOSE, or the current state */
	__u8 resets_received;
	__u8 pad[3];
	__u32 saddr[4];
	__u32 daddr[4];
	char comm[16];
	__u64 inode; /* iter/tcp listeners: the socket's inode, to find the owning process */
};

const struct flow_event *unused_flow_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct slot);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline struct slot *slot_of(__u64 key)
{
	__u32 idx = (__u32)key & slot_mask;
	return bpf_map_lookup_elem(&slots, &idx);
}

static __always_inline void submit(struct flow_event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* fill_sock copies addresses, ports, netns, cgroup and TCP counters of sk into e. */
static __always_inline void fill_sock(struct flow_event *e, const struct sock *sk)
{
	const struct tcp_sock *tp = (const void *)sk;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	e->family = family;
	e->saddr[1] = e->saddr[2] = e->saddr[3] = 0;
	e->daddr[1] = e->daddr[2] = e->daddr[3] = 0;
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		e->saddr[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		e->daddr[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	}
	e->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e->cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	e->sk_err = (__u16)BPF_CORE_READ(sk, sk_err);

	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->bytes_retrans = BPF_CORE_READ(tp, bytes_retrans);
	e->segs_out = BPF_CORE_READ(tp, segs_out);
	e->segs_in = BPF_CORE_READ(tp, segs_in);
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	e->min_rtt_us = BPF_CORE_READ(tp, rtt_min.s[0].v);

	unsigned long skflags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	if (skflags & (1UL << SOCK_DONE))
		e->flags |= F_FIN_RCVD;
	if (BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		e->flags |= F_FIN_ACKED; /* all sent sequence space acked; user space keeps it only if a FIN was sent */
}

/* fill_tcp copies the same fields as fill_sock with direct loads, for programs that hold a
 * trusted BTF pointer (tp_btf, iter): no helper call per field. */
static __always_inline void fill_tcp(struct flow_event *e, const struct tcp_sock *tp)
{
	const struct sock *sk = &tp->inet_conn.icsk_inet.sk;
	__u16 family = sk->__sk_common.skc_family;

	e->family = family;
	if (family == AF_INET6) {
		e->saddr[0] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		e->saddr[1] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		e->saddr[2] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		e->saddr[3] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		e->daddr[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
		e->daddr[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
		e->daddr[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
		e->daddr[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		e->saddr[0] = sk->__sk_common.skc_rcv_saddr;
		e->daddr[0] = sk->__sk_common.skc_daddr;
		e->saddr[1] = e->saddr[2] = e->saddr[3] = 0;
		e->daddr[1] = e->daddr[2] = e->daddr[3] = 0;
	}
	e->sport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	e->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	e->netns = sk->__sk_common.skc_net.net->ns.inum;
	e->cgroup_id = sk->sk_cgrp_data.cgroup->kn->id;
	e->sk_err = (__u16)sk->sk_err;

	e->bytes_acked = tp->bytes_acked;
	e->bytes_received = tp->bytes_received;
	e->bytes_retrans = tp->bytes_retrans;
	e->segs_out = tp->segs_out;
	e->segs_in = tp->segs_in;
	e->total_retrans = tp->total_retrans;
	e->srtt_us = tp->srtt_us >> 3;
	e->min_rtt_us = tp->rtt_min.s[0].v;

	if (sk->__sk_common.skc_flags & (1UL << SOCK_DONE))
		e->flags |= F_FIN_RCVD;
	if (tp->snd_una == tp->write_seq)
		e->flags |= F_FIN_ACKED;
}

/* take_slot moves what the slot knows about the socket into e and frees the slot. */
static __always_inline void take_slot(struct flow_event *e, __u64 key, bool free)
{
	struct slot *s = slot_of(key);
	e->pid = 0;
	e->resets_received = 0;
	e->start_ns = 0;
	if (!s || s->key != key || !(s->flags & (F_ACTIVE | F_PASSIVE))) {
		e->flags = 0;
		return;
	}
	e->start_ns = s->start_ns;
	e->flags = s->flags | F_START_KNOWN;
	e->pid = s->pid;
	e->resets_received = s->resets_received;
	__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
	if (free)
		s->key = 0;
}

static __always_inline bool is_tcp_inet(const struct sock *sk)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6;
}

/* ---- tp_btf: slots keyed by socket cookie ---- */

static __always_inline bool is_tcp_inet_btf(const struct sock *sk)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return false;
	__u16 family = sk->__sk_common.skc_family;
	return family == AF_INET || family == AF_INET6;
}

static __always_inline int open_cookie(const struct sock *sk, int newstate)
{
	if (!is_tcp_inet_btf(sk))
		return 0;
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct slot *s = slot_of(cookie);
	if (!s)
		return 0;
	count(C_OPEN);
	__u16 dir = newstate == TCP_SYN_SENT ? F_ACTIVE : F_PASSIVE;
	if (s->key == cookie && (s->flags & F_PROC)) {
		/* connect() stamped pid/comm a moment ago: keep them */
		s->flags |= dir;
		s->start_ns = bpf_ktime_get_ns();
		return 0;
	}
	if (s->key && s->key != cookie && (s->flags & (F_ACTIVE | F_PASSIVE)))
		count(C_SLOT_COLLISION);
	s->key = cookie;
	s->start_ns = bpf_ktime_get_ns();
	s->flags = dir;
	s->pid = 0;
	s->resets_received = 0;
	s->comm[0] = 0;
	return 0;
}

static __always_inline int emit_close(const struct sock *sk, const struct tcp_sock *tp, int oldstate, __u64 key, bool use_slot)
{
	struct flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(C_RING_FULL);
		return 0;
	}
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	e->inode = 0;
	e->kind = EV_CLOSE;
	e->state = oldstate;
	e->key = key;
	e->skaddr = (__u64)sk;
	e->end_ns = bpf_ktime_get_ns();
	if (use_slot) {
		take_slot(e, key, true);
		if (!(e->flags & F_START_KNOWN))
			count(C_START_MISS);
	} else {
		e->flags = 0;
		e->start_ns = 0;
		e->pid = 0;
		e->resets_received = 0;
	}
	if (tp)
		fill_tcp(e, tp);
	else
		fill_sock(e, sk);
	submit(e);
	count(C_CLOSE);
	return 0;
}

/* FIN_WAIT1 and LAST_ACK are entered only from close() or shutdown(), so in the context of a
 * process that holds the socket. An accepted socket, which no connect() stamped, learns its
 * process here; the record then names it without a listener or a /proc scan. A socket whose
 * local port is ephemeral and remote port is not is a client: it skips the slot lookup, which
 * costs a cache miss on every connection otherwise. */
static __always_inline int stamp_closer(const struct sock *sk)
{
	__u16 lport = sk->__sk_common.skc_num;
	__u16 rport = bpf_ntohs(sk->__sk_common.skc_dport);
	bool leph = lport >= eph_lo && lport <= eph_hi, reph = rport >= eph_lo && rport <= eph_hi;
	if (leph && !reph)
		return 0; /* a client of a fixed port, named at connect(): spare the slot lookup */
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct slot *s = slot_of(cookie);
	if (!s || s->key != cookie || (s->flags & F_PROC) || !(s->flags & (F_ACTIVE | F_PASSIVE)))
		return 0;
	s->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	s->flags |= F_PROC;
	count(C_CLOSER);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	if (newstate == TCP_SYN_SENT || newstate == TCP_SYN_RECV)
		return open_cookie(sk, newstate);
	if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		return stamp_closer(sk);
	if (newstate != TCP_CLOSE || oldstate == TCP_LISTEN)
		return 0;
	if (!is_tcp_inet_btf(sk))
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
	if (!tp)
		return 0;
	return emit_close(sk, tp, oldstate, bpf_get_socket_cookie((void *)sk), true);
}

/* ---- fallbacks (raw_tracepoint, tracepoint): no cookie helper there, so opens are events
 * keyed by the socket address and user space pairs them with the close. ---- */

static __always_inline int state_generic(const struct sock *sk, int oldstate, int newstate)
{
	if (newstate == TCP_SYN_SENT || newstate == TCP_SYN_RECV) {
		if (!is_tcp_inet(sk))
			return 0;
		struct flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			count(C_RING_FULL);
			return 0;
		}
		__builtin_memset(e, 0, sizeof(*e));
		e->kind = EV_OPEN;
		e->key = (__u64)sk;
		e->skaddr = (__u64)sk;
		e->start_ns = bpf_ktime_get_ns();
		e->flags = (newstate == TCP_SYN_SENT ? F_ACTIVE : F_PASSIVE) | F_START_KNOWN;
		submit(e);
		count(C_OPEN);
		return 0;
	}
	if (newstate != TCP_CLOSE || oldstate == TCP_LISTEN)
		return 0;
	if (!is_tcp_inet(sk))
		return 0;
	return emit_close(sk, NULL, oldstate, (__u64)sk, false);
}

SEC("raw_tracepoint/inet_sock_set_state")
int state_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return state_generic((const struct sock *)ctx->args[0], (int)ctx->args[1], (int)ctx->args[2]);
}

SEC("tracepoint/sock/inet_sock_set_state")
int state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const struct sock *sk = BPF_CORE_READ(ctx, skaddr);
	int oldstate = BPF_CORE_READ(ctx, oldstate);
	int newstate = BPF_CORE_READ(ctx, newstate);
	return state_generic(sk, oldstate, newstate);
}

/* ---- signals ---- */

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retransmit_btf, const struct sock *sk, const struct sk_buff *skb, int err)
{
	count(C_RETRANS);
	return 0;
}

/* A RST sent by a socket is reported as an event (rare): for an abort the RST follows the
 * CLOSE transition, so user space adds it to the record it still holds. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(send_reset_btf, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	count(C_RESET_SENT);
	if (!sk)
		return 0;
	struct flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(C_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = EV_RESET_SENT;
	e->key = bpf_get_socket_cookie((void *)sk);
	e->skaddr = (__u64)sk;
	e->end_ns = bpf_ktime_get_ns();
	submit(e);
	return 0;
}

/* A RST received lands in the socket's slot; tcp_reset() fires this before the CLOSE
 * transition, so the close record carries it. */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(receive_reset_btf, struct sock *sk)
{
	count(C_RESET_RECV);
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct slot *s = slot_of(cookie);
	if (s && s->key == cookie)
		s->resets_received++;
	return 0;
}

/* ---- process identity, captured in process context at connect() ---- */

static __always_inline int on_connect(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct slot *s = slot_of(cookie);
	if (!s)
		return 1;
	count(C_CONNECT);
	if (s->key && s->key != cookie && (s->flags & (F_ACTIVE | F_PASSIVE)))
		count(C_SLOT_COLLISION);
	s->key = cookie;
	s->flags = F_PROC;
	s->start_ns = 0;
	s->resets_received = 0;
	s->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	return 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

/* ---- iter/tcp: open and listening sockets of the reader's network namespace ---- */

SEC("iter/tcp")
int iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	if (!skc)
		return 0;
	__u16 family = skc->skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u8 state = skc->skc_state;
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	struct flow_event e = {};
	e.kind = state == TCP_LISTEN ? EV_LISTEN : EV_SNAPSHOT;
	e.state = state;
	e.key = bpf_get_socket_cookie(tp);
	e.skaddr = (__u64)tp;
	e.end_ns = bpf_ktime_get_ns();
	if (e.kind == EV_SNAPSHOT)
		take_slot(&e, e.key, false);
	fill_tcp(&e, tp);
	if (state == TCP_LISTEN) {
		struct socket *so = tp->inet_conn.icsk_inet.sk.sk_socket;
		if (so)
			e.inode = so->file->f_inode->i_ino;
	}
	count(C_ITER_SOCK);
	bpf_seq_write(seq, &e, sizeof(e));
	return 0;
}
