// SPDX-License-Identifier: GPL-2.0-only
/*
 * tetrahub network + DNS sensor.
 *
 * TCP connect/accept/listen/close with the 5-tuple, netns, socket cookie and
 * data bytes at close; UDP first send/receive per (socket, peer) with counters
 * user space sweeps; DNS packets (UDP/TCP to/from configured ports) copied
 * with the owning process. One ring for all of it, so a DNS answer is always
 * decoded before a connect that used it.
 *
 * Only hooks that need no kprobes/fentry/tp_btf: cgroup (root of cgroup v2,
 * multi-attach links), tracepoints and syscall tracepoints.
 *
 * Who owns a socket is only known in process context (connect, accept,
 * listen, sendmsg/recvmsg); th_net_socks remembers it by struct sock address
 * so that softirq events (state changes, received packets) can be attributed.
 * Entries go at TCP_CLOSE (TCP) or at socket release (UDP); LRU bounds it.
 *
 * Records and map values: include/th_net.h. User-space configuration:
 *   .rodata  agent_tgid      tgid whose sockets are ignored (no records, no DNS)
 *   map      th_net_cfg      what to emit (TH_NET_CFG_*) and the DNS ports
 *   map      th_net_events   ring buffer
 *   map      th_net_socks    LRU hash sk address -> owner
 *   map      th_net_udp      LRU hash th_udp_key -> th_udp_flow
 *   map      th_net_stats    per-CPU array[1] of th_net_stats
 *   map      tetrahub_procs  process sensor's map, reused (pinned by name,
 *                            th_procs_map.h)
 *   maps     th_cil_*        slots for Cilium's identity maps (see "Cilium
 *                            identities" below)
 *   .rodata  th_cilium_cluster_id  cluster id in Cilium map keys (0 = local)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "th_net.h"
#include "th_ring.h"
#include "th_procs_map.h"
#include "cilium_maps.h"

char LICENSE[] SEC("license") = "GPL";

/* Macros, not in vmlinux.h; stable ABI values. */
#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define EINPROGRESS 115
#define MSG_PEEK 2

const volatile __u32 agent_tgid = 0;

/*
 * Never read: puts the record types into the object's BTF (clang emits only
 * the types of maps, globals and functions) for src/sensors/net/layout.test.ts.
 */
const volatile struct th_net_btf_anchor {
	struct th_net net;
	struct th_dns dns;
} th_net_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TH_NET_EVENTS_DEFAULT_BYTES);
} th_net_events SEC(".maps");

/* Owner of a socket, by struct sock address. */
struct sock_ent {
	__u64 proc_ktime;
	__u64 cookie;
	__u64 udp_tx_pkts;
	__u64 udp_rx_pkts;
	__u64 udp_tx_bytes;
	__u64 udp_rx_bytes;
	__u32 tgid;
	__u32 netns;
	__u8 saddr_stash[16];
	__u16 sport_stash;
	__u8 flags;
	__u8 pad0;
	__u32 pad1;
	/* Cilium identities of the connect/accept record (ENT_IDS): the close reuses them. */
	__u32 s_identity;
	__u32 d_identity;
	__u16 s_endpoint;
	__u16 d_endpoint;
	__u8 id_flags;
	__u8 pad2[3];
};

#define ENT_INGRESS 0x1	   /* accepted */
#define ENT_CONNECTING 0x2 /* between cgroup/connect and sys_exit_connect */
#define ENT_CLOSED 0x4	   /* closed while connecting: sys_exit_connect reports and deletes */
#define ENT_STASH 0x8	   /* saddr/sport_stash valid */
#define ENT_UDP 0x10
/*
 * The agent's own socket: remembered only so that softirq-side hooks (DNS
 * capture, close) can tell it apart from an unknown socket and stay silent.
 */
#define ENT_AGENT 0x20
#define ENT_IDS 0x40 /* s/d_identity, s/d_endpoint, id_flags valid */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_NET_SOCKS_DEFAULT_ENTRIES);
	__type(key, __u64);
	__type(value, struct sock_ent);
} th_net_socks SEC(".maps");

/* A connect in flight, by pid_tgid: what cgroup/connect saw, for sys_exit_connect. */
struct pending_connect {
	__u64 sk;
	__u64 cookie;
	__u8 daddr[16];
	__u16 dport;
	__u16 family;
	__u8 protocol;
	__u8 pad0;
	__u16 pad1;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_NET_PENDING_ENTRIES);
	__type(key, __u64);
	__type(value, struct pending_connect);
} th_net_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_NET_UDP_DEFAULT_ENTRIES);
	__type(key, struct th_udp_key);
	__type(value, struct th_udp_flow);
} th_net_udp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_net_cfg);
} th_net_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_net_stats);
} th_net_stats SEC(".maps");

struct dns_scratch {
	struct th_dns rec;
	__u8 data[TH_DNS_PAYLOAD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} th_net_scratch SEC(".maps");

/* ---- Cilium identities: map-in-map slots ----------------------------------
 *
 * Cilium's pinned identity maps are reached through one-slot ARRAY_OF_MAPS
 * maps whose inner template has exactly Cilium's layout (cilium_maps.h).
 * User space (src/sensors/net/identity.ts) puts the map it verified into slot
 * 0, swaps it when Cilium re-creates its maps and empties it when they go.
 *
 * Why map-in-map rather than reusing the pinned map (reuse_fd) and loading a
 * second object on every change: a slot update is one atomic syscall, while
 * programs, links, the ring and the socket-owner maps stay as they are — no
 * window where events are lost or seen twice, no state to carry over. An
 * empty slot is also how the object loads and runs without Cilium: the
 * verified code is the same with and without it.
 *
 * The kernel only accepts an inner map whose type, key/value size and
 * map_flags equal the template's. cilium_lxc is created with or without
 * BPF_F_NO_PREALLOC depending on Cilium's configuration, hence two lxc slots;
 * user space fills the one matching the pinned map's flags. The two ipcache
 * generations differ in value size (12 / 24 B): one slot each, v2 first.
 */
#include "th_cilium_slots.h"

/* ---- small helpers ------------------------------------------------------ */

static __always_inline struct th_net_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_net_stats, &zero);
}

static __always_inline void count_rec(__u32 type, int ok)
{
	struct th_net_stats *s = stats();
	__u32 i = (type - TH_NET_REC_BASE) & (TH_NET_REC_MAX - 1);

	if (!s)
		return;
	if (ok)
		s->emitted[i]++;
	else
		s->dropped[i]++;
}

#define COUNT(field)                              \
	do {                                      \
		struct th_net_stats *__s = stats(); \
		if (__s)                          \
			__s->field++;             \
	} while (0)

static __always_inline struct th_net_cfg *cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_net_cfg, &zero);
}

static __always_inline int emit_net(void)
{
	struct th_net_cfg *c = cfg();

	return c && (c->flags & TH_NET_CFG_NET);
}

/*
 * The address of a socket that the verifier types as a socket pointer (cgroup
 * hook contexts), as a plain number we may read through: copy it via a probe
 * read, which yields an untyped scalar.
 */
static __always_inline __u64 launder(__u64 v)
{
	__u64 out = 0;

	bpf_probe_read_kernel(&out, sizeof(out), &v);
	return out;
}

static __always_inline __u32 sk_netns(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline void sock_upsert(__u64 key, struct sock_ent *e)
{
	if (bpf_map_update_elem(&th_net_socks, &key, e, BPF_ANY) == 0)
		COUNT(sock_inserts);
	else
		COUNT(sock_update_err);
}

static __always_inline void sock_delete(__u64 key)
{
	if (bpf_map_delete_elem(&th_net_socks, &key) == 0)
		COUNT(sock_deletes);
}

static __always_inline struct th_net *net_reserve(__u8 type)
{
	struct th_net *r = bpf_ringbuf_reserve(&th_net_events, sizeof(*r), 0);

	if (!r) {
		count_rec(type, 0);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->hdr.type = type;
	r->hdr.version = TH_NET_LAYOUT_VERSION;
	r->hdr.size = sizeof(*r);
	r->hdr.ktime = bpf_ktime_get_boot_ns();
	return r;
}

/*
 * Identity of one address (16 bytes of a record, IPv4 in the first 4): the
 * local endpoint in cilium_lxc if it is one (exact match, gives the endpoint
 * id), else the ipcache's longest prefix. `ipc` is either ipcache generation:
 * sec_identity is the first u32 of both values. Returns TH_NET_ID_S_* bits.
 */
static __always_inline __u8 cilium_end(void *ipc, void *lxc, __u16 family, __u8 *a, __u32 *identity, __u16 *endpoint)
{
	struct ipcache_key ik = {};
	struct endpoint_key ek = {};
	struct endpoint_info *ep;
	__u32 *v;
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	if (family == AF_INET6 && !w[0] && !w[1] && w[2] == bpf_htonl(0xffff)) {
		family = AF_INET; /* IPv4-mapped: Cilium keys it as IPv4 */
		w[0] = w[3];
	}
	if (family == AF_INET) {
		if (!w[0])
			return 0;
		ik.lpm_prefixlen = CILIUM_IPCACHE_PREFIX_V4;
		ik.family = ek.family = CILIUM_ENDPOINT_KEY_IPV4;
		ik.ip4 = ek.ip4 = w[0];
	} else if (family == AF_INET6) {
		if (!(w[0] | w[1] | w[2] | w[3]))
			return 0;
		ik.lpm_prefixlen = CILIUM_IPCACHE_PREFIX_V6;
		ik.family = ek.family = CILIUM_ENDPOINT_KEY_IPV6;
		__builtin_memcpy(ik.ip6, w, 16);
		__builtin_memcpy(ek.ip6, w, 16);
	} else {
		return 0;
	}
	ik.cluster_id = ek.cluster_id = th_cilium_cluster_id;

	if (lxc && (ep = bpf_map_lookup_elem(lxc, &ek))) {
		if (ep->flags & CILIUM_ENDPOINT_F_HOST) {
			/* A node IP: identity host, no endpoint (cilium-maps.md §4.3). */
			*identity = ep->sec_id ? ep->sec_id : CILIUM_ID_HOST;
			return TH_NET_ID_S_LXC | TH_NET_ID_S_HOST;
		}
		*identity = ep->sec_id;
		*endpoint = ep->lxc_id;
		return TH_NET_ID_S_LXC;
	}
	if (ipc && (v = bpf_map_lookup_elem(ipc, &ik))) {
		*identity = *v;
		return TH_NET_ID_S_IPCACHE;
	}
	return 0;
}

/*
 * Fills both ends' Cilium identities. A subprogram: one copy of the lookups
 * instead of one per record kind. Without Cilium it costs four array lookups;
 * with Cilium two hash lookups and one LPM walk. TCP closes reuse what their
 * connect/accept looked up (ids_save/ids_load): half the records of a
 * connection, and the same peer anyway.
 * Null checks stay one pointer at a time: `a || b` on two pointers compiles
 * to an OR of the registers, which the verifier refuses (pointer arithmetic).
 */
static __noinline void cilium_identify(struct th_net *r)
{
	void *ipc, *lxc;
	__u8 f = 0;

	th_cilium_maps(&ipc, &lxc);
	if (ipc)
		f |= TH_NET_ID_MAP_IPCACHE;
	if (lxc)
		f |= TH_NET_ID_MAP_LXC;
	barrier_var(f); /* else clang tests `ipc | lxc` for this */
	if (!f)
		return;
	/*
	 * Local end: pod IPs and node IPs are all in cilium_lxc, so the ipcache
	 * (an LPM walk, the costly lookup) is only asked without an lxc map.
	 */
	f |= cilium_end(lxc ? 0 : ipc, lxc, r->family, r->saddr, &r->s_identity, &r->s_endpoint);
	/* D_* bits are the S_* bits shifted by 3. */
	f |= cilium_end(ipc, lxc, r->family, r->daddr, &r->d_identity, &r->d_endpoint) << 3;
	r->id_flags = f;
}

static __always_inline void ids_save(struct sock_ent *e, struct th_net *r)
{
	e->s_identity = r->s_identity;
	e->d_identity = r->d_identity;
	e->s_endpoint = r->s_endpoint;
	e->d_endpoint = r->d_endpoint;
	e->id_flags = r->id_flags;
	e->flags |= ENT_IDS;
}

static __always_inline void ids_load(struct th_net *r, struct sock_ent *e)
{
	r->s_identity = e->s_identity;
	r->d_identity = e->d_identity;
	r->s_endpoint = e->s_endpoint;
	r->d_endpoint = e->d_endpoint;
	r->id_flags = e->id_flags;
}

static __always_inline void net_submit(struct th_net *r, __u8 type)
{
	bpf_ringbuf_submit(r, th_rb_flags(&th_net_events));
	count_rec(type, 1);
}

static __always_inline void set_owner(struct th_net *r, struct sock_ent *e)
{
	if (e) {
		r->tgid = e->tgid;
		r->proc_ktime = e->proc_ktime;
	} else {
		r->flags |= TH_NET_F_NOPROC;
	}
}

/* Local and remote end of a socket as the kernel holds them now. */
static __always_inline void sk_tuple(struct sock *sk, struct th_net *r)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	r->family = family;
	r->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	r->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&r->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&r->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(r->saddr, &s, 4);
		__builtin_memcpy(r->daddr, &d, 4);
	}
}

/*
 * Data bytes of a TCP socket. bytes_acked/bytes_received also count SYN/FIN
 * sequence numbers, so: sent = bytes_sent - bytes_retrans (data segments put
 * on the wire once each), received = bytes_received minus the peer's FIN
 * (SOCK_DONE is set when that FIN was processed).
 */
static __always_inline void tcp_bytes(struct sock *sk, struct th_net *r)
{
	struct tcp_sock *tp = (void *)sk;
	__u64 sent = BPF_CORE_READ(tp, bytes_sent);
	__u64 retrans = BPF_CORE_READ(tp, bytes_retrans);
	__u64 recv = BPF_CORE_READ(tp, bytes_received);
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	unsigned long done = 1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE);

	if ((flags & done) && recv > 0)
		recv--;
	r->bytes_sent = sent > retrans ? sent - retrans : 0;
	r->bytes_received = recv;
	r->flags |= TH_NET_F_BYTES;
}

/* ---- TCP/UDP connect ---------------------------------------------------- */

/* syscalls:sys_exit_*, by the format's offsets (see struct state_args for why). */
struct sys_exit_args {
	__u64 common;
	long id;
	long ret;
};

static __always_inline int on_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct pending_connect pc = {};
	struct sock_ent e = {};
	struct bpf_sock *bsk;
	__u32 proto;
	__u64 key;

	bsk = ctx->sk;
	if (!bsk)
		return 1;
	proto = ctx->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	key = launder((__u64)bsk);
	if (tgid == agent_tgid) {
		e.tgid = tgid;
		e.flags = ENT_AGENT;
		sock_upsert(key, &e);
		return 1;
	}
	pc.sk = key;
	pc.cookie = bpf_get_socket_cookie(ctx);
	pc.family = family;
	pc.protocol = proto;
	pc.dport = bpf_ntohs((__u16)ctx->user_port);
	if (family == AF_INET) {
		__u32 a = ctx->user_ip4;

		__builtin_memcpy(pc.daddr, &a, 4);
	} else {
		__u32 *d = (__u32 *)pc.daddr;

		d[0] = ctx->user_ip6[0];
		d[1] = ctx->user_ip6[1];
		d[2] = ctx->user_ip6[2];
		d[3] = ctx->user_ip6[3];
	}
	bpf_map_update_elem(&th_net_pending, &id, &pc, BPF_ANY);

	e.tgid = tgid;
	e.proc_ktime = th_proc_ktime(tgid);
	e.cookie = pc.cookie;
	e.netns = sk_netns((struct sock *)key);
	e.flags = ENT_CONNECTING | (proto == IPPROTO_UDP ? ENT_UDP : 0);
	sock_upsert(key, &e);
	return 1;
}

SEC("cgroup/connect4")
int th_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, AF_INET);
}

SEC("cgroup/connect6")
int th_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, AF_INET6);
}

/* The connect result, in the connecting thread. */
SEC("tracepoint/syscalls/sys_exit_connect")
int th_connect_exit(struct sys_exit_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending_connect *pp, p;
	struct sock_ent *e;
	struct th_net *r;
	struct sock *sk;
	int ret = ctx->ret;
	__u8 state;

	pp = bpf_map_lookup_elem(&th_net_pending, &id);
	if (!pp)
		return 0;
	p = *pp;
	bpf_map_delete_elem(&th_net_pending, &id);
	sk = (struct sock *)p.sk;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e = bpf_map_lookup_elem(&th_net_socks, &p.sk);
	if (e)
		e->flags &= ~ENT_CONNECTING;

	if (emit_net() && (r = net_reserve(TH_NET_REC_CONNECT))) {
		r->tgid = id >> 32;
		r->tid = (__u32)id;
		r->proc_ktime = e ? e->proc_ktime : th_proc_ktime(id >> 32);
		r->cookie = p.cookie;
		r->netns = e ? e->netns : sk_netns(sk);
		r->ret = ret;
		r->protocol = p.protocol;
		r->state = state;
		sk_tuple(sk, r);
		/* What was asked for, even when a failed connect has reset the socket. */
		r->family = p.family;
		r->dport = p.dport;
		__builtin_memcpy(r->daddr, p.daddr, 16);
		if (r->sport == 0 && e && (e->flags & ENT_STASH)) {
			r->sport = e->sport_stash;
			__builtin_memcpy(r->saddr, e->saddr_stash, 16);
			r->flags |= TH_NET_F_TUPLE_STASH;
		}
		cilium_identify(r);
		if (e)
			ids_save(e, r);
		net_submit(r, TH_NET_REC_CONNECT);
	}

	if (e && (e->flags & ENT_CLOSED))
		sock_delete(p.sk);
	else if (ret < 0 && ret != -EINPROGRESS && p.protocol == IPPROTO_TCP && state == TCP_CLOSE)
		sock_delete(p.sk);
	return 0;
}

/* ---- TCP state changes: listen, connect outcome, close ------------------- */

/*
 * sock:inet_sock_set_state, by its format's offsets (stable since 4.16).
 * Plain struct on purpose: vmlinux.h's CO-RE variant makes clang compute
 * ctx offsets in registers, which the verifier refuses for ctx accesses.
 */
struct state_args {
	__u64 common;
	__u64 skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

static __always_inline void tp_addrs(struct state_args *ctx, struct th_net *r)
{
	r->family = ctx->family;
	r->sport = ctx->sport;
	r->dport = ctx->dport;
	if (ctx->family == AF_INET6) {
		__builtin_memcpy(r->saddr, ctx->saddr_v6, 16);
		__builtin_memcpy(r->daddr, ctx->daddr_v6, 16);
	} else {
		__builtin_memcpy(r->saddr, ctx->saddr, 4);
		__builtin_memcpy(r->daddr, ctx->daddr, 4);
	}
}

/* CLOSE -> LISTEN runs in the listen() syscall: process context. */
static __always_inline int on_listen(struct state_args *ctx, __u64 key)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sock *sk = (struct sock *)key;
	struct sock_ent e = {};
	struct th_net *r;

	if (tgid == agent_tgid)
		return 0;
	e.tgid = tgid;
	e.proc_ktime = th_proc_ktime(tgid);
	e.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	e.netns = sk_netns(sk);
	e.flags = ENT_INGRESS; /* its close is reported as the server side */
	sock_upsert(key, &e);
	if (!emit_net() || !(r = net_reserve(TH_NET_REC_LISTEN)))
		return 0;
	r->tgid = tgid;
	r->tid = (__u32)id;
	r->proc_ktime = e.proc_ktime;
	r->cookie = e.cookie;
	r->netns = e.netns;
	r->protocol = IPPROTO_TCP;
	r->state = TCP_LISTEN;
	r->flags = TH_NET_F_INGRESS;
	tp_addrs(ctx, r);
	cilium_identify(r);
	net_submit(r, TH_NET_REC_LISTEN);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int th_state(struct state_args *ctx)
{
	int ns = ctx->newstate, os = ctx->oldstate;
	__u64 key = (__u64)ctx->skaddr;
	struct sock *sk = (struct sock *)key;
	struct sock_ent *e;
	struct th_net *r;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ns == TCP_LISTEN)
		return on_listen(ctx, key);
	if (ns != TCP_CLOSE && os != TCP_SYN_SENT)
		return 0;
	e = bpf_map_lookup_elem(&th_net_socks, &key);
	if (!e) {
		if (ns == TCP_CLOSE)
			COUNT(close_untracked);
		return 0;
	}
	if (e->flags & ENT_AGENT) {
		if (ns == TCP_CLOSE)
			sock_delete(key);
		return 0;
	}
	if (os == TCP_SYN_SENT && (e->flags & ENT_CONNECTING)) {
		/* The local end is reset by a failed connect before it returns: keep it. */
		e->sport_stash = ctx->sport;
		if (ctx->family == AF_INET6)
			__builtin_memcpy(e->saddr_stash, ctx->saddr_v6, 16);
		else
			__builtin_memcpy(e->saddr_stash, ctx->saddr, 4);
		e->flags |= ENT_STASH;
		if (ns == TCP_CLOSE)
			e->flags |= ENT_CLOSED;
		return 0;
	}
	if (ns != TCP_CLOSE)
		return 0;
	if (emit_net() && (r = net_reserve(TH_NET_REC_CLOSE))) {
		set_owner(r, e);
		r->cookie = e->cookie ? e->cookie : BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		r->netns = e->netns ? e->netns : sk_netns(sk);
		r->protocol = IPPROTO_TCP;
		r->state = os;
		if (e->flags & ENT_INGRESS)
			r->flags |= TH_NET_F_INGRESS;
		tp_addrs(ctx, r);
		tcp_bytes(sk, r);
		if (e->flags & ENT_IDS)
			ids_load(r, e);
		else
			cilium_identify(r);
		net_submit(r, TH_NET_REC_CLOSE);
	}
	sock_delete(key);
	return 0;
}

/* ---- accept -------------------------------------------------------------- */

static __always_inline int on_accept_exit(long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct task_struct *task;
	struct sock_ent e = {};
	struct file **fds;
	struct file *f = 0;
	struct socket *so;
	struct th_net *r;
	struct sock *sk;
	unsigned int max;
	__u16 family;

	if (fd < 0 || tgid == agent_tgid)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	fds = BPF_CORE_READ(task, files, fdt, fd);
	max = BPF_CORE_READ(task, files, fdt, max_fds);
	if (!fds || fd >= max)
		return 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	so = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(so, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	e.tgid = tgid;
	e.proc_ktime = th_proc_ktime(tgid);
	e.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	e.netns = sk_netns(sk);
	e.flags = ENT_INGRESS;
	/* The record first: the socket's entry keeps its identities for the close. */
	r = emit_net() ? net_reserve(TH_NET_REC_ACCEPT) : 0;
	if (r) {
		r->tgid = tgid;
		r->tid = (__u32)id;
		r->proc_ktime = e.proc_ktime;
		r->cookie = e.cookie;
		r->netns = e.netns;
		r->protocol = IPPROTO_TCP;
		r->state = BPF_CORE_READ(sk, __sk_common.skc_state);
		r->flags = TH_NET_F_INGRESS;
		sk_tuple(sk, r);
		cilium_identify(r);
		ids_save(&e, r);
	}
	sock_upsert((__u64)sk, &e);
	if (r)
		net_submit(r, TH_NET_REC_ACCEPT);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int th_accept_exit(struct sys_exit_args *ctx)
{
	return on_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int th_accept4_exit(struct sys_exit_args *ctx)
{
	return on_accept_exit(ctx->ret);
}

/* Accepted sockets get a cookie before accept() returns (tracepoints cannot make one). */
SEC("sockops")
int th_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		bpf_get_socket_cookie(skops);
	return 1;
}

/* Bound sockets (listeners above all) get a cookie before listen() reports them. */
SEC("cgroup/post_bind4")
int th_post_bind4(struct bpf_sock *ctx)
{
	bpf_get_socket_cookie(ctx);
	return 1;
}

SEC("cgroup/post_bind6")
int th_post_bind6(struct bpf_sock *ctx)
{
	bpf_get_socket_cookie(ctx);
	return 1;
}

/* ---- UDP ------------------------------------------------------------------ */

/*
 * Counts one datagram of a (socket, peer, direction) flow; the first one of a
 * flow becomes a TH_NET_REC_UDP record. Returns nothing: never blocks I/O.
 */
static __always_inline void udp_flow(struct th_udp_key *k, struct sock_ent *e, struct th_udp_flow *init, __u32 bytes)
{
	struct th_udp_flow *f;
	struct th_net *r;
	__u64 now = bpf_ktime_get_boot_ns();

	f = bpf_map_lookup_elem(&th_net_udp, k);
	if (f) {
		__sync_fetch_and_add(&f->packets, 1);
		if (bytes)
			__sync_fetch_and_add(&f->bytes, bytes);
		f->last_ktime = now;
		return;
	}
	init->tgid = e->tgid;
	init->proc_ktime = e->proc_ktime;
	init->netns = e->netns;
	init->first_ktime = now;
	init->last_ktime = now;
	init->packets = 1;
	init->bytes = bytes;
	if (bpf_map_update_elem(&th_net_udp, k, init, BPF_NOEXIST)) {
		COUNT(udp_flow_err); /* raced with another CPU, or could not evict */
		return;
	}
	COUNT(udp_flow_inserts);
	r = net_reserve(TH_NET_REC_UDP);
	if (!r)
		return;
	r->tgid = e->tgid;
	r->tid = (__u32)bpf_get_current_pid_tgid();
	r->proc_ktime = e->proc_ktime;
	r->cookie = k->cookie;
	r->netns = e->netns;
	r->protocol = IPPROTO_UDP;
	r->family = k->family;
	r->sport = init->sport;
	__builtin_memcpy(r->saddr, init->saddr, 16);
	r->dport = k->port;
	__builtin_memcpy(r->daddr, k->addr, 16);
	r->packets = 1;
	r->flags = TH_NET_F_FIRST | (k->dir ? TH_NET_F_INGRESS : 0);
	if (bytes) {
		r->flags |= TH_NET_F_BYTES;
		if (k->dir)
			r->bytes_received = bytes;
		else
			r->bytes_sent = bytes;
	}
	cilium_identify(r);
	net_submit(r, TH_NET_REC_UDP);
}

/* Unconnected sendmsg / recvmsg with an address: the peer is in the hook's context. */
static __always_inline int on_udp_msg(struct bpf_sock_addr *ctx, __u16 family, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct th_udp_flow init = {};
	struct th_udp_key k = {};
	struct sock_ent *e, ne = {};
	struct bpf_sock *bsk;
	__u64 key;

	bsk = ctx->sk;
	if (!bsk || ctx->protocol != IPPROTO_UDP)
		return 1;
	/* Connected sockets are counted by sock_recv_length (with bytes). */
	if (dir && bsk->dst_port)
		return 1;
	key = launder((__u64)bsk);
	e = bpf_map_lookup_elem(&th_net_socks, &key);
	if (tgid == agent_tgid) {
		if (!e) {
			ne.tgid = tgid;
			ne.flags = ENT_UDP | ENT_AGENT;
			sock_upsert(key, &ne);
		}
		return 1;
	}
	if (!e || e->tgid != tgid) {
		ne.tgid = tgid;
		ne.proc_ktime = th_proc_ktime(tgid);
		ne.cookie = bpf_get_socket_cookie(ctx);
		ne.netns = sk_netns((struct sock *)key);
		ne.flags = ENT_UDP;
		if (e) {
			ne.udp_tx_pkts = e->udp_tx_pkts;
			ne.udp_rx_pkts = e->udp_rx_pkts;
		}
		sock_upsert(key, &ne);
		e = bpf_map_lookup_elem(&th_net_socks, &key);
		if (!e)
			return 1;
	}
	if (dir)
		__sync_fetch_and_add(&e->udp_rx_pkts, 1);
	else
		__sync_fetch_and_add(&e->udp_tx_pkts, 1);
	if (!emit_net())
		return 1;

	k.cookie = e->cookie;
	k.family = family;
	k.dir = dir;
	k.port = bpf_ntohs((__u16)ctx->user_port);
	init.sport = bsk->src_port;
	if (family == AF_INET) {
		__u32 a = ctx->user_ip4, s = bsk->src_ip4;

		__builtin_memcpy(k.addr, &a, 4);
		__builtin_memcpy(init.saddr, &s, 4);
	} else {
		__u32 *a = (__u32 *)k.addr, *s = (__u32 *)init.saddr;

		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		s[0] = bsk->src_ip6[0];
		s[1] = bsk->src_ip6[1];
		s[2] = bsk->src_ip6[2];
		s[3] = bsk->src_ip6[3];
	}
	udp_flow(&k, e, &init, 0);
	return 1;
}

SEC("cgroup/sendmsg4")
int th_sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_udp_msg(ctx, AF_INET, 0);
}

SEC("cgroup/sendmsg6")
int th_sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_udp_msg(ctx, AF_INET6, 0);
}

SEC("cgroup/recvmsg4")
int th_recvmsg4(struct bpf_sock_addr *ctx)
{
	return on_udp_msg(ctx, AF_INET, 1);
}

SEC("cgroup/recvmsg6")
int th_recvmsg6(struct bpf_sock_addr *ctx)
{
	return on_udp_msg(ctx, AF_INET6, 1);
}

/*
 * sock:sock_send_length / sock_recv_length (Linux 6.3+): every sendmsg and
 * recvmsg with its length, in process context. Used for connected UDP
 * sockets only (the cgroup hooks see no peer there). Declared by hand with
 * the format's fixed offsets (no CO-RE), so the object loads where the
 * tracepoint does not exist; user space then just does not attach it.
 */
struct sock_len_args {
	__u64 common;
	__u64 sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
};

static __always_inline int on_len(struct sock_len_args *ctx, __u8 dir)
{
	struct th_udp_flow init = {};
	struct th_udp_key k = {};
	struct sock_ent *e;
	struct sock *sk;
	__u64 key = ctx->sk;
	__u16 dport;
	int ret = ctx->ret;

	if (ctx->protocol != IPPROTO_UDP || ret <= 0 || (dir && (ctx->flags & MSG_PEEK)))
		return 0;
	if (ctx->family != AF_INET && ctx->family != AF_INET6)
		return 0;
	e = bpf_map_lookup_elem(&th_net_socks, &key);
	if (!e || (e->flags & ENT_AGENT))
		return 0;
	sk = (struct sock *)key;
	dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (!dport)
		return 0; /* unconnected: counted by cgroup/sendmsg, recvmsg */
	if (dir) {
		__sync_fetch_and_add(&e->udp_rx_pkts, 1);
		__sync_fetch_and_add(&e->udp_rx_bytes, ret);
	} else {
		__sync_fetch_and_add(&e->udp_tx_pkts, 1);
		__sync_fetch_and_add(&e->udp_tx_bytes, ret);
	}
	if (!emit_net() || !e->cookie)
		return 0;
	k.cookie = e->cookie;
	k.family = ctx->family;
	k.dir = dir;
	k.port = bpf_ntohs(dport);
	init.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (ctx->family == AF_INET6) {
		BPF_CORE_READ_INTO(&k.addr, sk, __sk_common.skc_v6_daddr);
		BPF_CORE_READ_INTO(&init.saddr, sk, __sk_common.skc_v6_rcv_saddr);
	} else {
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(k.addr, &d, 4);
		__builtin_memcpy(init.saddr, &s, 4);
	}
	udp_flow(&k, e, &init, ret);
	return 0;
}

SEC("tracepoint/sock/sock_send_length")
int th_send_len(struct sock_len_args *ctx)
{
	return on_len(ctx, 0);
}

SEC("tracepoint/sock/sock_recv_length")
int th_recv_len(struct sock_len_args *ctx)
{
	return on_len(ctx, 1);
}

/* ---- socket release: UDP totals, and entries no state change will clear --- */

SEC("cgroup/sock_release")
int th_release(struct bpf_sock *ctx)
{
	__u32 family = ctx->family, proto = ctx->protocol;
	struct sock_ent *e;
	struct th_net *r;
	__u64 key;

	if (family != AF_INET && family != AF_INET6)
		return 1;
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 1;
	key = launder((__u64)ctx);
	e = bpf_map_lookup_elem(&th_net_socks, &key);
	if (!e)
		return 1;
	if (proto == IPPROTO_TCP) {
		/* Still open sockets close later (TCP_CLOSE); closed ones never will. */
		if (ctx->state == TCP_CLOSE && !(e->flags & ENT_CONNECTING))
			sock_delete(key);
		return 1;
	}
	if (!(e->flags & ENT_AGENT) && (e->udp_tx_pkts || e->udp_rx_pkts) && emit_net() &&
	    (r = net_reserve(TH_NET_REC_CLOSE))) {
		set_owner(r, e);
		r->tid = (__u32)bpf_get_current_pid_tgid();
		r->cookie = e->cookie;
		r->netns = e->netns;
		r->protocol = IPPROTO_UDP;
		r->family = family;
		r->packets = e->udp_tx_pkts + e->udp_rx_pkts;
		r->bytes_sent = e->udp_tx_bytes;
		r->bytes_received = e->udp_rx_bytes;
		if (e->udp_tx_bytes || e->udp_rx_bytes)
			r->flags |= TH_NET_F_BYTES;
		/* src_* of the context is only readable in post_bind programs. */
		sk_tuple((struct sock *)key, r);
		cilium_identify(r);
		net_submit(r, TH_NET_REC_CLOSE);
	}
	sock_delete(key);
	return 1;
}

/* ---- DNS: cgroup_skb on the cgroup-v2 root --------------------------------- */

struct l3v4 {
	__u8 vihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u32 saddr;
	__u32 daddr;
};

struct l3v6 {
	__u32 vtcfl;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline int is_dns_port(struct th_net_cfg *c, __u16 port)
{
	return port && (c->dns_ports[0] == port || c->dns_ports[1] == port ||
			c->dns_ports[2] == port || c->dns_ports[3] == port);
}

/*
 * Copies a bounded prefix of the L4 payload of packets whose server-side port
 * (destination on egress, source on ingress) is a DNS port. Only the headers
 * needed for that choice are parsed here; DNS itself is decoded in user space.
 * IPv6 extension headers and non-first IPv4 fragments are not followed.
 */
static __always_inline int on_skb(struct __sk_buff *skb, int egress)
{
	struct th_net_cfg *c = cfg();
	struct dns_scratch *s;
	struct bpf_sock *bsk;
	struct sock_ent *e = 0;
	struct th_dns *r;
	__u32 zero = 0;
	__u64 off, poff, plen, len; /* 64-bit: no truncations for the verifier to lose track of */
	__u16 ports[2], family;
	__u8 proto, saddr[16] = {}, daddr[16] = {};

	if (!c || !(c->flags & TH_NET_CFG_DNS))
		return 1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct l3v4 ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		if ((ip.vihl & 0xf) < 5 || (ip.frag_off & bpf_htons(0x1fff)))
			return 1;
		proto = ip.protocol;
		off = (ip.vihl & 0xf) * 4;
		family = AF_INET;
		__builtin_memcpy(saddr, &ip.saddr, 4);
		__builtin_memcpy(daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct l3v6 ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		proto = ip6.nexthdr;
		off = sizeof(ip6);
		family = AF_INET6;
		__builtin_memcpy(saddr, ip6.saddr, 16);
		__builtin_memcpy(daddr, ip6.daddr, 16);
	} else {
		return 1;
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 1;
	if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
		return 1;
	if (!is_dns_port(c, bpf_ntohs(egress ? ports[1] : ports[0])))
		return 1;
	if (proto == IPPROTO_UDP) {
		poff = off + 8;
	} else {
		__u8 doff;

		if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
			return 1;
		poff = off + (doff >> 4) * 4;
	}
	if (poff >= skb->len)
		return 1; /* no payload: handshake, pure ACK */
	plen = skb->len - poff;

	s = bpf_map_lookup_elem(&th_net_scratch, &zero);
	if (!s)
		return 1;
	r = &s->rec;
	__builtin_memset(r, 0, sizeof(*r));

	bsk = skb->sk;
	if (bsk) {
		__u64 key = launder((__u64)bsk);

		e = bpf_map_lookup_elem(&th_net_socks, &key);
	}
	if (e) {
		if (e->flags & ENT_AGENT)
			return 1;
		r->tgid = e->tgid;
		r->proc_ktime = e->proc_ktime;
		r->netns = e->netns;
	} else {
		r->flags |= TH_DNS_F_NOPROC;
	}
	r->cookie = bpf_get_socket_cookie(skb);
	r->ifindex = skb->ifindex;
	r->family = family;
	r->protocol = proto;
	r->sport = bpf_ntohs(ports[0]);
	r->dport = bpf_ntohs(ports[1]);
	__builtin_memcpy(r->saddr, saddr, 16);
	__builtin_memcpy(r->daddr, daddr, 16);
	if (egress)
		r->flags |= TH_DNS_F_EGRESS;
	r->orig_len = plen;
	len = plen;
	if (len > TH_DNS_PAYLOAD_MAX) {
		len = TH_DNS_PAYLOAD_MAX;
		r->flags |= TH_DNS_F_TRUNC;
		COUNT(dns_truncated);
	}
	/*
	 * Identity for len in [1, MAX] (poff < skb->len), written so that older
	 * verifiers (6.1) see the bounds on the register passed to the helper.
	 */
	barrier_var(len);
	len = ((len - 1) & (TH_DNS_PAYLOAD_MAX - 1)) + 1;
	if (bpf_skb_load_bytes(skb, poff, s->data, len))
		return 1;
	r->payload_len = len;
	r->hdr.type = TH_NET_REC_DNS;
	r->hdr.version = TH_NET_LAYOUT_VERSION;
	r->hdr.size = sizeof(*r) + len;
	r->hdr.ktime = bpf_ktime_get_boot_ns();
	count_rec(TH_NET_REC_DNS, bpf_ringbuf_output(&th_net_events, s, sizeof(*r) + len, th_rb_flags(&th_net_events)) == 0);
	return 1;
}

SEC("cgroup_skb/egress")
int th_dns_egress(struct __sk_buff *skb)
{
	return on_skb(skb, 1);
}

SEC("cgroup_skb/ingress")
int th_dns_ingress(struct __sk_buff *skb)
{
	return on_skb(skb, 0);
}

#ifdef TH_BENCH_IDENTITY
/*
 * Benchmark only (bench/identity.ts builds a separate object with
 * -DTH_BENCH_IDENTITY; bpf/Makefile never defines it): cilium_identify on the
 * record in th_bench_rec, run by BPF_PROG_TEST_RUN with repeat, so that the
 * lookup's cost is measured without the noise of a whole connect storm.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_net);
} th_bench_rec SEC(".maps");

SEC("tc")
int th_bench_identify(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct th_net *r = bpf_map_lookup_elem(&th_bench_rec, &zero);

	if (r)
		cilium_identify(r);
	return 0;
}
#endif
