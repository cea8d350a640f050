/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * th_policy_connect.h — rules, records and map values of the connect-policy
 * backend (bpf/policy_connect.bpf.c), shared by BPF and user space
 * (src/policy/connect/). One object per loaded policy hook: the maps hold
 * that hook's selectors only.
 *
 * Byte order: host order except addresses (network order bytes). Ports are
 * host order.
 */
/* layout:output src/policy/connect/layout.gen.ts */
/* layout:import tetrahub_events.h */
#ifndef TH_POLICY_CONNECT_H
#define TH_POLICY_CONNECT_H

#include "tetrahub_events.h"

/* layout:begin */

#define TH_PC_LAYOUT_VERSION 1
/* th_hdr.type of a decision record (apart from the process and net records). */
#define TH_PC_REC_DECISION 40

/* Selectors per hook, port ranges per port filter, set filters per selector. */
#define TH_PC_MAX_RULES 8
#define TH_PC_MAX_PORTS 8
#define TH_PC_MAX_CHECKS 4
/* Binary paths compared in the kernel (bytes, NUL included). */
#define TH_PC_PATH_MAX 256

/* th_pc_rule.flags */
#define TH_PC_R_VALID 0x1
#define TH_PC_R_BIN 0x2          /* matchBinaries: bin_bit must be set in the process mask */
#define TH_PC_R_BIN_NOT 0x4      /* ... must NOT be set (NotIn) */
#define TH_PC_R_PORT 0x8         /* DPort: one of port_lo..port_hi */
#define TH_PC_R_NOTPORT 0x10     /* NotDPort: none of nport_lo..nport_hi */
#define TH_PC_R_PRIV 0x20        /* DPortPriv: port < 1024 */
#define TH_PC_R_NOTPRIV 0x40     /* NotDPortPriv */
#define TH_PC_R_NETNS 0x80       /* podSelector: the socket's netns must be in th_pc_netns */
#define TH_PC_R_BIN_UNKNOWN 0x100 /* NotIn also matches processes the exec hook never saw */

/* th_pc_rule.chk_kind[] */
#define TH_PC_CHK_ADDR 1     /* DAddr: destination in addr set chk_set */
#define TH_PC_CHK_NOTADDR 2  /* NotDAddr */
#define TH_PC_CHK_IDENT 3    /* DIdentity / DLabels: peer identity in identity set chk_set */
#define TH_PC_CHK_NOTIDENT 4 /* NotDIdentity */

/* th_pc_rule.actions, th_pc_event.actions */
#define TH_PC_ACT_POST 0x1
#define TH_PC_ACT_OVERRIDE 0x2
#define TH_PC_ACT_SIGKILL 0x4
#define TH_PC_ACT_NOPOST 0x8

/* th_pc_rule.families bits, th_pc_rule.protocols bits */
#define TH_PC_FAM_INET 0x1
#define TH_PC_FAM_INET6 0x2
#define TH_PC_PROTO_TCP 0x1
#define TH_PC_PROTO_UDP 0x2

/* th_pc_cfg.flags */
#define TH_PC_CFG_ENABLED 0x1
#define TH_PC_CFG_MONITOR 0x2

/* th_pc_event.flags */
#define TH_PC_EV_DENIED 0x1    /* the connect was refused (enforce mode) */
#define TH_PC_EV_MONITOR 0x2   /* monitor mode: would have been refused/killed */
#define TH_PC_EV_KILL 0x4      /* SIGKILL queued for sys_exit_connect */
#define TH_PC_EV_ID_IPCACHE 0x8 /* d_identity from the ipcache (longest prefix) */
#define TH_PC_EV_ID_LXC 0x10   /* d_identity from cilium_lxc */
#define TH_PC_EV_ID_RULE 0x20  /* d_identity by rule (world / host for loopback) */
#define TH_PC_EV_MAP_IPCACHE 0x40 /* an ipcache map was attached */
#define TH_PC_EV_BIN_UNKNOWN 0x80 /* the process was never seen at exec */

/* Default sizes. */
#define TH_PC_EVENTS_BYTES 262144
#define TH_PC_PROCS_ENTRIES 8192
#define TH_PC_BINS_ENTRIES 256
#define TH_PC_IDS_ENTRIES 16384
#define TH_PC_ADDRS_ENTRIES 1024
#define TH_PC_NETNS_ENTRIES 1024

/* One selector, in th_pc_rules (array, index = selector order; first match wins). */
struct th_pc_rule {
	__u32 flags;
	__u32 actions;
	__s32 err;
	__u16 families;
	__u8 protocols;
	__u8 bin_bit;
	__u8 nports;
	__u8 nnotports;
	__u8 nchecks;
	__u8 pad0;
	__u32 pad1;
	__u16 port_lo[TH_PC_MAX_PORTS];
	__u16 port_hi[TH_PC_MAX_PORTS];
	__u16 nport_lo[TH_PC_MAX_PORTS];
	__u16 nport_hi[TH_PC_MAX_PORTS];
	__u8 chk_kind[TH_PC_MAX_CHECKS];
	__u8 chk_set[TH_PC_MAX_CHECKS];
};

/* th_pc_cfg (array, one entry). */
struct th_pc_cfg {
	__u32 flags;
	__u32 nrules;
	/* Identity of a remote address no Cilium entry covers; 0xffffffff = world-ipv4/-ipv6 by family. */
	__u32 world_identity;
	__u32 pad0;
};

/* th_pc_procs (LRU hash, key tgid). */
struct th_pc_proc {
	__u64 mask;   /* binary sets this image's path is in */
	__u64 follow; /* followChildren sets inherited from an ancestor (or this image) */
};

/* th_pc_bins (hash): key = path, NUL-padded to TH_PC_PATH_MAX; value = set mask. */
struct th_pc_bin {
	__u64 mask;
};

/* th_pc_ids (hash): (set, identity) → 1. */
struct th_pc_id_key {
	__u32 set;
	__u32 identity;
};

/*
 * th_pc_addrs (LPM trie): prefixlen counts from `set` (32 static bits: set,
 * family, pad) plus the address bits. family: 4 or 6.
 */
struct th_pc_addr_key {
	__u32 prefixlen;
	__u8 set;
	__u8 family;
	__u16 pad0;
	__u8 addr[16];
};

/*
 * A connect that matched a selector.
 *   rule          index of the selector in the policy hook
 *   actions       TH_PC_ACT_* of that selector
 *   err           what the connect returned because of it (0 = allowed)
 *   d_identity    peer identity as looked up (TH_PC_EV_ID_* says where from)
 *   d_endpoint    Cilium endpoint id when the peer is a local endpoint (cilium_lxc)
 *   saddr/sport   local end when already bound, else zero
 */
struct th_pc_event {
	struct th_hdr hdr;
	__u64 cookie;
	__u64 proc_ktime;
	__u32 tgid;
	__u32 tid;
	__u32 netns;
	__u32 d_identity;
	__s32 err;
	__u16 family;
	__u16 dport;
	__u16 sport;
	__u8 protocol;
	__u8 rule;
	__u8 actions;
	__u8 flags;
	__u16 d_endpoint;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* th_pc_stats (per-CPU array, one entry). */
struct th_pc_stats {
	__u64 checked;
	__u64 matched;
	__u64 post;
	__u64 nopost;
	__u64 override;
	__u64 monitor_override;
	__u64 signal;
	__u64 monitor_signal;
	__u64 ring_drops;
	__u64 procs_update_err;
};

/* layout:end */

_Static_assert(sizeof(struct th_pc_rule) == 96, "th_pc_rule size");
_Static_assert(sizeof(struct th_pc_event) == 96, "th_pc_event size");
_Static_assert(sizeof(struct th_pc_addr_key) == 24, "th_pc_addr_key size");

#endif /* TH_POLICY_CONNECT_H */
