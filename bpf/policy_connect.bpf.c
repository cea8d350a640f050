// SPDX-License-Identifier: GPL-2.0-only
/*
 * Connect-type TracingPolicy hooks (sys_connect, security_socket_connect,
 * tcp_connect, … as written in a policy; udp_sendmsg also at sendmsg4/6)
 * evaluated at the cgroup connect4 / connect6 hooks, which work on every kernel we support without kprobes or
 * BPF-LSM. One object per loaded policy hook; its maps hold that hook's
 * selectors (first matching selector wins, as in Tetragon).
 *
 * Per connect: destination port ranges, CIDR sets (LPM), address family,
 * protocol, the process's binary (a bit mask computed at exec, see below),
 * the socket's network namespace (podSelector) and the peer's Cilium
 * identity — longest-prefix match in Cilium's ipcache through the same
 * map-in-map slots as net.bpf.c (th_cil_*; user space keeps them pointed at
 * Cilium's current maps) — against identity sets (DIdentity, and DLabels
 * resolved to identities by user space).
 *
 * Actions: Override refuses the connect (return 0: EPERM, or argError through
 * bpf_set_retval where the kernel has it); Sigkill refuses it and queues a
 * SIGKILL that sys_exit_connect sends in the same thread before it returns
 * to user space (bpf_send_signal is not available to cgroup programs);
 * Post reports. Monitor mode allows and reports what would have happened.
 *
 * Binaries: the exec path (bprm->filename) is looked up once per exec in
 * th_pc_bins and the resulting set mask kept per tgid (th_pc_procs), so the
 * connect hook does one hash lookup instead of walking dentries. fork copies
 * the parent's entry (followChildren bits keep following after exec).
 * Running processes are seeded by user space from the process cache.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "th_policy_connect.h"
#include "th_ring.h"
#include "th_procs_map.h"
#include "cilium_maps.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SIGKILL 9
#define EPERM 1

const volatile __u32 agent_tgid = 0;
/* Bits of th_pc_proc.mask whose matchBinaries filter has followChildren. */
const volatile __u64 follow_sets = 0;
/* bpf_set_retval may be called (probed by user space: a failed load retries without). */
const volatile __u8 use_set_retval = 0;

const volatile struct th_pc_btf_anchor {
	struct th_pc_event ev;
	struct th_pc_rule rule;
} th_pc_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TH_PC_EVENTS_BYTES);
} th_pc_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TH_PC_MAX_RULES);
	__type(key, __u32);
	__type(value, struct th_pc_rule);
} th_pc_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_pc_cfg);
} th_pc_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_pc_stats);
} th_pc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_PC_PROCS_ENTRIES);
	__type(key, __u32);
	__type(value, struct th_pc_proc);
} th_pc_procs SEC(".maps");

struct th_pc_path {
	char p[TH_PC_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_PC_BINS_ENTRIES);
	__type(key, struct th_pc_path);
	__type(value, struct th_pc_bin);
} th_pc_bins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_pc_path);
} th_pc_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_PC_IDS_ENTRIES);
	__type(key, struct th_pc_id_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} th_pc_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TH_PC_ADDRS_ENTRIES);
	__type(key, struct th_pc_addr_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} th_pc_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_PC_NETNS_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} th_pc_netns SEC(".maps");

/* Threads whose refused connect must end in SIGKILL, by pid_tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} th_pc_kill SEC(".maps");

/* Cilium's identity maps, by slot (see th_cilium_slots.h for why map-in-map). */
#include "th_cilium_slots.h"

static __always_inline struct th_pc_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_pc_stats, &zero);
}

#define COUNT(field)                               \
	do {                                       \
		struct th_pc_stats *__s = stats(); \
		if (__s)                           \
			__s->field++;              \
	} while (0)

/* ---- binaries: exec / fork ------------------------------------------------ */

SEC("raw_tp/sched_process_exec")
int th_pc_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct linux_binprm *bprm = (void *)ctx->args[2];
	struct task_struct *task = (void *)ctx->args[0];
	struct th_pc_proc val = {}, *old;
	struct th_pc_path *path;
	struct th_pc_bin *bin;
	__u32 zero = 0, tgid;
	const char *fn;

	tgid = BPF_CORE_READ(task, tgid);
	path = bpf_map_lookup_elem(&th_pc_scratch, &zero);
	if (!path)
		return 0;
	/* Map keys compare every byte: the tail must be zero. */
	__builtin_memset(path, 0, sizeof(*path));
	fn = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(path->p, sizeof(path->p), fn);
	bin = bpf_map_lookup_elem(&th_pc_bins, path);
	old = bpf_map_lookup_elem(&th_pc_procs, &tgid);
	if (old)
		val.follow = old->follow;
	if (bin) {
		val.mask = bin->mask;
		val.follow |= bin->mask & follow_sets;
	}
	if (!val.mask && !val.follow) {
		/* Nothing to remember: absent = mask 0. */
		if (old)
			bpf_map_delete_elem(&th_pc_procs, &tgid);
		return 0;
	}
	if (bpf_map_update_elem(&th_pc_procs, &tgid, &val, BPF_ANY))
		COUNT(procs_update_err);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int th_pc_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0];
	struct task_struct *child = (void *)ctx->args[1];
	struct th_pc_proc *pp, val;
	__u32 ptgid, tgid;

	tgid = BPF_CORE_READ(child, tgid);
	if (BPF_CORE_READ(child, pid) != tgid)
		return 0; /* a thread */
	ptgid = BPF_CORE_READ(parent, tgid);
	pp = bpf_map_lookup_elem(&th_pc_procs, &ptgid);
	if (!pp)
		return 0;
	/* Same image until it execs; follow bits stay after that. */
	val = *pp;
	if (bpf_map_update_elem(&th_pc_procs, &tgid, &val, BPF_ANY))
		COUNT(procs_update_err);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int th_pc_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, pid) != tgid)
		return 0;
	/* sched_process_exit fires per thread; the leader's exit is the process's (mostly). */
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		bpf_map_delete_elem(&th_pc_procs, &tgid);
	return 0;
}

struct conn {
	__u32 w[4]; /* destination, IPv4 in w[0] (v4-mapped IPv6 unmapped) */
	__u32 fam;  /* 4 or 6 for addr/identity lookups */
	__u32 identity;
	__u16 dport;
	__u8 famfl; /* TH_PC_FAM_* of the socket */
	__u8 protofl;
	__u8 id_flags;
	__u8 id_done;
	__u8 bin_known;
	__u8 pad;
	__u16 endpoint;
	__u16 pad1;
	__u32 pad2;
	__u64 mask;
	__u32 netns;
	__u32 world;
};

/* ---- the peer's Cilium identity (global functions: verified once each) - -------------------------------------------- */

/*
 * Identity of the destination `w` (IPv4 in w[0]): loopback is host;
 * cilium_lxc exact match (node IPs are host), else the ipcache's longest
 * prefix, else world by rule. Sets identity, id_flags (TH_PC_EV_ID_* | MAP bits), id_done.
 */
__noinline int peer_identity(struct conn *c)
{
	__u32 fam, w0, w1, w2, w3, world, *identity;
	struct ipcache_key ik = {};
	struct endpoint_key ek = {};
	struct endpoint_info *ep;
	__u32 *v;
	void *ipc, *lxc;
	__u8 f = 0;

	if (!c)
		return 0;
	fam = c->fam;
	w0 = c->w[0];
	w1 = c->w[1];
	w2 = c->w[2];
	w3 = c->w[3];
	world = c->world;
	identity = &c->identity;
	c->id_done = 1;

	th_cilium_maps(&ipc, &lxc);
	if (ipc)
		f |= TH_PC_EV_MAP_IPCACHE;
	if (fam == 4) {
		ik.lpm_prefixlen = CILIUM_IPCACHE_PREFIX_V4;
		ik.family = ek.family = CILIUM_ENDPOINT_KEY_IPV4;
		ik.ip4 = ek.ip4 = w0;
	} else {
		ik.lpm_prefixlen = CILIUM_IPCACHE_PREFIX_V6;
		ik.family = ek.family = CILIUM_ENDPOINT_KEY_IPV6;
		ik.ip4 = ek.ip4 = w0;
		ik.pad4 = ek.pad1 = w1;
		ik.pad5 = ek.pad2 = w2;
		ik.pad6 = ek.pad3 = w3;
	}
	ik.cluster_id = ek.cluster_id = th_cilium_cluster_id;
	/*
	 * Loopback never leaves the node: host, whatever the ipcache's
	 * 0.0.0.0/0 (world) entry would say.
	 */
	if ((fam == 4 && (bpf_ntohl(w0) >> 24) == 127) || (fam == 6 && !w0 && !w1 && !w2 && w3 == bpf_htonl(1))) {
		*identity = CILIUM_ID_HOST;
		c->id_flags = f | TH_PC_EV_ID_RULE;
		return 0;
	}
	if (lxc) {
		ep = bpf_map_lookup_elem(lxc, &ek);
		if (ep) {
			if (ep->flags & CILIUM_ENDPOINT_F_HOST) {
				*identity = ep->sec_id ? ep->sec_id : CILIUM_ID_HOST;
			} else {
				*identity = ep->sec_id;
				c->endpoint = ep->lxc_id;
			}
			c->id_flags = f | TH_PC_EV_ID_LXC;
			return 0;
		}
	}
	if (ipc) {
		v = bpf_map_lookup_elem(ipc, &ik);
		if (v) {
			*identity = *v;
			c->id_flags = f | TH_PC_EV_ID_IPCACHE;
			return 0;
		}
	}
	if (world == 0xffffffff)
		*identity = fam == 4 ? CILIUM_ID_WORLD_IPV4 : CILIUM_ID_WORLD_IPV6;
	else
		*identity = world;
	c->id_flags = f | TH_PC_EV_ID_RULE;
	return 0;
}

/* ---- the decision ----------------------------------------------------------- */


static __always_inline int in_ranges(const __u16 *lo, const __u16 *hi, __u8 n, __u16 port)
{
	int i;

	for (i = 0; i < TH_PC_MAX_PORTS; i++) {
		if (i >= n)
			break;
		if (port >= lo[i] && port <= hi[i])
			return 1;
	}
	return 0;
}

static __always_inline int addr_in(__u8 set, struct conn *c)
{
	struct th_pc_addr_key k = {};

	k.set = set;
	k.family = c->fam;
	if (c->fam == 4) {
		k.prefixlen = 32 + 32;
		__builtin_memcpy(k.addr, c->w, 4);
	} else {
		k.prefixlen = 32 + 128;
		__builtin_memcpy(k.addr, c->w, 16);
	}
	return bpf_map_lookup_elem(&th_pc_addrs, &k) != 0;
}

static __always_inline int ident_in(__u8 set, struct conn *c)
{
	struct th_pc_id_key k = {};

	if (!c->id_done)
		peer_identity(c);
	k.set = set;
	k.identity = c->identity;
	return bpf_map_lookup_elem(&th_pc_ids, &k) != 0;
}

/* Global: verified once on its own, not once per rule and call site. */
__noinline int rule_matches(struct th_pc_rule *r, struct conn *c)
{
	int i;

	if (!r || !c)
		return 0;

	if (r->families && !(r->families & c->famfl))
		return 0;
	if (r->protocols && !(r->protocols & c->protofl))
		return 0;
	if ((r->flags & TH_PC_R_PORT) && !in_ranges(r->port_lo, r->port_hi, r->nports, c->dport))
		return 0;
	if ((r->flags & TH_PC_R_NOTPORT) && in_ranges(r->nport_lo, r->nport_hi, r->nnotports, c->dport))
		return 0;
	if ((r->flags & TH_PC_R_PRIV) && c->dport >= 1024)
		return 0;
	if ((r->flags & TH_PC_R_NOTPRIV) && c->dport < 1024)
		return 0;
	if (r->flags & TH_PC_R_BIN) {
		int in = (c->mask >> (r->bin_bit & 63)) & 1;

		if (r->flags & TH_PC_R_BIN_NOT ? in : !in)
			return 0;
	}
	if (r->flags & TH_PC_R_NETNS) {
		__u32 ns = c->netns;

		if (!bpf_map_lookup_elem(&th_pc_netns, &ns))
			return 0;
	}
	for (i = 0; i < TH_PC_MAX_CHECKS; i++) {
		__u8 kind, set;

		if (i >= r->nchecks)
			break;
		kind = r->chk_kind[i];
		set = r->chk_set[i];
		if (kind == TH_PC_CHK_ADDR && !addr_in(set, c))
			return 0;
		if (kind == TH_PC_CHK_NOTADDR && addr_in(set, c))
			return 0;
		if (kind == TH_PC_CHK_IDENT && !ident_in(set, c))
			return 0;
		if (kind == TH_PC_CHK_NOTIDENT && ident_in(set, c))
			return 0;
	}
	return 1;
}

static __always_inline int decide(struct bpf_sock_addr *ctx, __u16 family)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, zero = 0, i;
	struct th_pc_cfg *cfg;
	struct th_pc_rule *r = 0;
	struct th_pc_proc *proc;
	struct th_pc_event *ev;
	struct conn c = {};
	struct bpf_sock *bsk;
	__u32 proto, n;
	int monitor, deny, kill;
	__s32 err = 0;

	cfg = bpf_map_lookup_elem(&th_pc_cfg, &zero);
	if (!cfg || !(cfg->flags & TH_PC_CFG_ENABLED))
		return 1;
	if (tgid == agent_tgid)
		return 1;
	proto = ctx->protocol;
	if (proto == IPPROTO_TCP)
		c.protofl = TH_PC_PROTO_TCP;
	else if (proto == IPPROTO_UDP)
		c.protofl = TH_PC_PROTO_UDP;
	else
		return 1;
	COUNT(checked);
	c.world = cfg->world_identity;
	c.dport = bpf_ntohs((__u16)ctx->user_port);
	if (family == AF_INET) {
		c.famfl = TH_PC_FAM_INET;
		c.fam = 4;
		c.w[0] = ctx->user_ip4;
	} else {
		c.famfl = TH_PC_FAM_INET6;
		c.w[0] = ctx->user_ip6[0];
		c.w[1] = ctx->user_ip6[1];
		c.w[2] = ctx->user_ip6[2];
		c.w[3] = ctx->user_ip6[3];
		if (!c.w[0] && !c.w[1] && c.w[2] == bpf_htonl(0xffff)) {
			c.fam = 4; /* v4-mapped: addresses and identities as IPv4 */
			c.w[0] = c.w[3];
			c.w[3] = 0;
			c.w[2] = 0;
		} else {
			c.fam = 6;
		}
	}
	proc = bpf_map_lookup_elem(&th_pc_procs, &tgid);
	if (proc) {
		c.mask = proc->mask | proc->follow;
		c.bin_known = 1;
	}
	bsk = ctx->sk;
	if (bsk) {
		/* A plain number we may read through (the verifier types ctx->sk as a socket). */
		__u64 a = (__u64)bsk, sk = 0;

		bpf_probe_read_kernel(&sk, sizeof(sk), &a);
		c.netns = BPF_CORE_READ((struct sock *)sk, __sk_common.skc_net.net, ns.inum);
	}

	n = cfg->nrules;
	for (i = 0; i < TH_PC_MAX_RULES; i++) {
		__u32 k = i;

		if (i >= n)
			break;
		r = bpf_map_lookup_elem(&th_pc_rules, &k);
		if (!r || !(r->flags & TH_PC_R_VALID))
			return 1;
		if (rule_matches(r, &c))
			break;
		r = 0;
	}
	if (!r)
		return 1;

	COUNT(matched);
	monitor = cfg->flags & TH_PC_CFG_MONITOR;
	kill = r->actions & TH_PC_ACT_SIGKILL;
	deny = kill || (r->actions & TH_PC_ACT_OVERRIDE);
	if (r->actions & TH_PC_ACT_OVERRIDE) {
		if (monitor)
			COUNT(monitor_override);
		else
			COUNT(override);
	}
	if (kill) {
		if (monitor) {
			COUNT(monitor_signal);
		} else {
			__u8 one = 1;

			COUNT(signal);
			bpf_map_update_elem(&th_pc_kill, &id, &one, BPF_ANY);
		}
	}
	if (deny && !monitor)
		err = (r->actions & TH_PC_ACT_OVERRIDE) && r->err < 0 ? r->err : -EPERM;
	if (!use_set_retval && err)
		err = -EPERM;

	if (r->actions & TH_PC_ACT_NOPOST) {
		COUNT(nopost);
	} else {
		/* The record names the peer's identity; looked up before the reservation is held. */
		if (!c.id_done)
			peer_identity(&c);
		ev = bpf_ringbuf_reserve(&th_pc_events, sizeof(*ev), 0);
		if (!ev) {
			COUNT(ring_drops);
		} else {
			__builtin_memset(ev, 0, sizeof(*ev));
			ev->hdr.type = TH_PC_REC_DECISION;
			ev->hdr.version = TH_PC_LAYOUT_VERSION;
			ev->hdr.size = sizeof(*ev);
			ev->hdr.ktime = bpf_ktime_get_boot_ns();
			ev->cookie = bpf_get_socket_cookie(ctx);
			ev->proc_ktime = th_proc_ktime(tgid);
			ev->tgid = tgid;
			ev->tid = (__u32)id;
			ev->netns = c.netns;
			ev->d_identity = c.identity;
			ev->d_endpoint = c.endpoint;
			ev->err = err;
			ev->family = family;
			ev->dport = c.dport;
			ev->protocol = proto;
			ev->rule = i;
			ev->actions = r->actions;
			ev->flags = c.id_flags | (monitor && deny ? TH_PC_EV_MONITOR : 0) | (err ? TH_PC_EV_DENIED : 0) |
				    (kill && !monitor ? TH_PC_EV_KILL : 0) | (c.bin_known ? 0 : TH_PC_EV_BIN_UNKNOWN);
			if (bsk) {
				ev->sport = bsk->src_port;
				if (family == AF_INET) {
					__u32 s = bsk->src_ip4;

					__builtin_memcpy(ev->saddr, &s, 4);
				}
			}
			__builtin_memcpy(ev->daddr, c.w, 16);
			if (c.fam == 4 && family == AF_INET6) {
				/* report the address as the process wrote it */
				__builtin_memset(ev->daddr, 0, 16);
				ev->daddr[10] = 0xff;
				ev->daddr[11] = 0xff;
				__builtin_memcpy(&ev->daddr[12], c.w, 4);
			}
			bpf_ringbuf_submit(ev, th_rb_flags(&th_pc_events));
		}
		COUNT(post);
	}
	if (!err)
		return 1;
	if (use_set_retval && err != -EPERM)
		bpf_set_retval(err);
	return 0;
}

SEC("cgroup/connect4")
int th_pc_connect4(struct bpf_sock_addr *ctx)
{
	return decide(ctx, AF_INET);
}

SEC("cgroup/connect6")
int th_pc_connect6(struct bpf_sock_addr *ctx)
{
	return decide(ctx, AF_INET6);
}

/* UDP datagrams with a destination (unconnected sends); connected UDP sockets went through connect4/6. */
SEC("cgroup/sendmsg4")
int th_pc_sendmsg4(struct bpf_sock_addr *ctx)
{
	return decide(ctx, AF_INET);
}

SEC("cgroup/sendmsg6")
int th_pc_sendmsg6(struct bpf_sock_addr *ctx)
{
	return decide(ctx, AF_INET6);
}

/* syscalls:sys_exit_connect, by the format's offsets. */
struct sys_exit_args {
	__u64 common;
	long id;
	long ret;
};

static __always_inline int kill_pending(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&th_pc_kill, &id))
		return 0;
	bpf_map_delete_elem(&th_pc_kill, &id);
	bpf_send_signal(SIGKILL);
	return 0;
}

/* Sigkill: the connect (or send) was refused; end the process before it sees the error. */
SEC("tracepoint/syscalls/sys_exit_connect")
int th_pc_connect_exit(struct sys_exit_args *ctx)
{
	return kill_pending();
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int th_pc_sendto_exit(struct sys_exit_args *ctx)
{
	return kill_pending();
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int th_pc_sendmsg_exit(struct sys_exit_args *ctx)
{
	return kill_pending();
}
