//go:build ignore

// drop: a TCX ingress program for tests. It drops a random fraction of the TCP packets that
// carry payload, or deterministically every Nth of them, and every SYN to one destination port, so tests can cause retransmits and
// connect timeouts on a receive path (this kernel has no netem). Go sets the behaviour through
// the drop_config map and reads what happened from the drop_counters map.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define IPPROTO_TCP_NUM 6
#define TCP_FLAG_SYN_BIT 0x02
#define TCP_FLAG_ACK_BIT 0x10

// drop_settings is the only entry of the drop_config map.
struct drop_settings {
	__u64 payload_threshold; // drop a payload packet when a 32-bit random number is below this (2^32 = all)
	__u16 port;              // when non-zero, payload drops apply only to packets from or to this port
	__u16 syn_port;          // when non-zero, drop every SYN (without ACK) to this destination port
	__u32 payload_every;     // when non-zero, drop every Nth payload packet (deterministic)
	__u64 payload_seq;       // payload packets counted for payload_every (shared by all CPUs)
};

// Indexes of drop_counters.
enum drop_counter {
	COUNTER_TCP = 0,          // TCP packets seen
	COUNTER_PAYLOAD = 1,      // TCP packets with payload seen (matching the port filter)
	COUNTER_PAYLOAD_DROP = 2, // of which dropped
	COUNTER_SYN = 3,          // SYNs (without ACK) seen
	COUNTER_SYN_DROP = 4,     // of which dropped
	COUNTER_MAX = 5,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drop_settings);
} drop_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_counters SEC(".maps");

// tcp_view is what the program needs to know about one TCP packet.
struct tcp_view {
	__u32 payload;
	__u16 sport;
	__u16 dport;
	__u8 flags;
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&drop_counters, &idx);
	if (v)
		*v += 1;
}

// parse_tcp fills v from the TCP header at offset off; l4len is the length of the IP payload.
static __always_inline int parse_tcp(struct __sk_buff *skb, __u32 off, __u32 l4len, struct tcp_view *v)
{
	__u8 hdr[14];
	if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)) < 0)
		return -1;
	__u32 doff = (hdr[12] >> 4) * 4;
	if (doff < 20 || doff > l4len)
		return -1;
	v->sport = ((__u16)hdr[0] << 8) | hdr[1];
	v->dport = ((__u16)hdr[2] << 8) | hdr[3];
	v->flags = hdr[13];
	v->payload = l4len - doff;
	return 0;
}

// parse fills v for an IPv4 or IPv6 TCP packet; it returns -1 for anything else.
static __always_inline int parse(struct __sk_buff *skb, struct tcp_view *v)
{
	__u32 off = ETH_HLEN;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.protocol != IPPROTO_TCP_NUM)
			return -1;
		__u32 ihl = ip.ihl * 4;
		__u32 total = bpf_ntohs(ip.tot_len);
		if (total == 0) // a GSO packet larger than 64 KiB
			total = skb->len - off;
		if (ihl < 20 || total < ihl)
			return -1;
		return parse_tcp(skb, off + ihl, total - ihl, v);
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return -1;
		if (ip6.nexthdr != IPPROTO_TCP_NUM) // extension headers are not followed
			return -1;
		__u32 total = bpf_ntohs(ip6.payload_len);
		if (total == 0) // a jumbogram (BIG TCP)
			total = skb->len - off - sizeof(ip6);
		return parse_tcp(skb, off + sizeof(ip6), total, v);
	}
	return -1;
}

SEC("tcx/ingress")
int drop_ingress(struct __sk_buff *skb)
{
	struct tcp_view v = {};
	if (parse(skb, &v) < 0)
		return TC_ACT_UNSPEC;
	count(COUNTER_TCP);

	__u32 zero = 0;
	struct drop_settings *cfg = bpf_map_lookup_elem(&drop_config, &zero);
	if (!cfg)
		return TC_ACT_UNSPEC;

	if ((v.flags & TCP_FLAG_SYN_BIT) && !(v.flags & TCP_FLAG_ACK_BIT)) {
		count(COUNTER_SYN);
		if (cfg->syn_port && v.dport == cfg->syn_port) {
			count(COUNTER_SYN_DROP);
			return TC_ACT_SHOT;
		}
	}
	if (v.payload == 0)
		return TC_ACT_UNSPEC;
	if (cfg->port && v.sport != cfg->port && v.dport != cfg->port)
		return TC_ACT_UNSPEC;
	count(COUNTER_PAYLOAD);
	if (cfg->payload_every) {
		__u64 seq = __sync_fetch_and_add(&cfg->payload_seq, 1) + 1;
		if (seq % cfg->payload_every == 0) {
			count(COUNTER_PAYLOAD_DROP);
			return TC_ACT_SHOT;
		}
		return TC_ACT_UNSPEC;
	}
	if ((__u64)bpf_get_prandom_u32() < cfg->payload_threshold) {
		count(COUNTER_PAYLOAD_DROP);
		return TC_ACT_SHOT;
	}
	return TC_ACT_UNSPEC; // TCX_NEXT: let other programs on this hook run
}
