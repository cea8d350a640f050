/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * th_net.h — records and map values of the network + DNS sensor
 * (bpf/net.bpf.c), shared by BPF and user space.
 *
 * The exported part (layout:begin … layout:end) follows the rules of
 * tetrahub_events.h; scripts/gen-layouts.js writes it to the file named by the
 * layout:output directive below. struct th_hdr comes from tetrahub_events.h.
 *
 * All multi-byte fields are host byte order EXCEPT the addresses (network
 * order bytes, as on the wire). Ports are host order.
 */
/* layout:output src/sensors/net/layout.gen.ts */
/* layout:import tetrahub_events.h */
#ifndef TH_NET_H
#define TH_NET_H

#include "tetrahub_events.h"

/* layout:begin */

/* Bumped on any incompatible change of the records below (th_hdr.version). */
#define TH_NET_LAYOUT_VERSION 2

/*
 * th_hdr.type of the records in the th_net_events ring. Numbered apart from
 * the process records so that a mixed dump stays unambiguous.
 */
#define TH_NET_REC_BASE 16
#define TH_NET_REC_CONNECT 16
#define TH_NET_REC_ACCEPT 17
#define TH_NET_REC_LISTEN 18
#define TH_NET_REC_CLOSE 19
#define TH_NET_REC_UDP 20
#define TH_NET_REC_DNS 21
/* Length of the per-type counter arrays in th_net_stats (index = type - BASE). */
#define TH_NET_REC_MAX 8

/* th_net.flags */
#define TH_NET_F_INGRESS 0x1
#define TH_NET_F_NOPROC 0x2
#define TH_NET_F_FIRST 0x4
#define TH_NET_F_BYTES 0x8
#define TH_NET_F_TUPLE_STASH 0x10

/*
 * th_net.id_flags: where the Cilium identities of the record came from.
 * S_* = local end (saddr), D_* = remote end (daddr). LXC: the address is a
 * local endpoint in cilium_lxc (s/d_endpoint valid unless HOST); IPCACHE:
 * longest-prefix match in the ipcache; HOST: a node-IP entry of cilium_lxc.
 * MAP_IPCACHE / MAP_LXC: such a Cilium map was attached when the record was
 * made (without them an identity of 0 means "no Cilium map", not "no entry").
 */
#define TH_NET_ID_S_LXC 0x1
#define TH_NET_ID_S_IPCACHE 0x2
#define TH_NET_ID_S_HOST 0x4
#define TH_NET_ID_D_LXC 0x8
#define TH_NET_ID_D_IPCACHE 0x10
#define TH_NET_ID_D_HOST 0x20
#define TH_NET_ID_MAP_IPCACHE 0x40
#define TH_NET_ID_MAP_LXC 0x80

/* th_dns.flags */
#define TH_DNS_F_EGRESS 0x1
#define TH_DNS_F_TRUNC 0x2
#define TH_DNS_F_NOPROC 0x4

/* th_net_cfg.flags: what user space wants emitted (a map, so it can change without reload). */
#define TH_NET_CFG_NET 0x1
#define TH_NET_CFG_DNS 0x2
#define TH_NET_DNS_PORTS 4

/* Largest DNS payload copied per packet; longer ones carry TH_DNS_F_TRUNC. */
#define TH_DNS_PAYLOAD_MAX 512

/* Default sizes; user space may override (mapSizes). */
#define TH_NET_EVENTS_DEFAULT_BYTES 8388608
#define TH_NET_SOCKS_DEFAULT_ENTRIES 65536
#define TH_NET_UDP_DEFAULT_ENTRIES 16384
#define TH_NET_PENDING_ENTRIES 8192

/*
 * TH_NET_REC_CONNECT / ACCEPT / LISTEN / CLOSE / UDP.
 *   hdr.ktime      event time (ns since boot)
 *   tgid, tid      process (thread) that owns the socket; for CLOSE and
 *                  softirq events the owner recorded at connect/accept/listen
 *   proc_ktime     that process's image ktime (tetrahub_procs), 0 if unknown
 *   cookie         socket cookie (0 if the kernel never generated one)
 *   netns          network namespace inode of the socket
 *   ret            CONNECT: syscall result (0, -EINPROGRESS, -ECONNREFUSED…)
 *   family         AF_INET (2) / AF_INET6 (10)
 *   protocol       IPPROTO_TCP (6) / IPPROTO_UDP (17)
 *   state          TCP state: CONNECT, ACCEPT: now; LISTEN: TCP_LISTEN;
 *                  CLOSE: the state it closed from (TCP_SYN_SENT = failed)
 *   s*, d*         local and remote end
 *   bytes_*        CLOSE (TCP): data bytes, see net.bpf.c; UDP close: bytes
 *                  known from sock_*_length (TH_NET_F_BYTES when valid)
 *   packets        UDP: datagrams (UDP record: 1; CLOSE: total sent+received)
 *   s/d_identity   Cilium security identity of the local / remote address as
 *                  Cilium's maps said when the record was made (TCP CLOSE:
 *                  when its CONNECT/ACCEPT was); 0 = no entry or no map
 *                  (id_flags tells which); rules are user space's. Local end:
 *                  cilium_lxc only (the ipcache only when no lxc map is
 *                  attached); remote end: cilium_lxc, then the ipcache
 *   s/d_endpoint   Cilium endpoint id (cilium_lxc lxc_id) when that address is
 *                  a local endpoint, else 0
 *   id_flags       TH_NET_ID_*
 */
struct th_net {
	struct th_hdr hdr;
	__u64 cookie;
	__u64 proc_ktime;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 tgid;
	__u32 tid;
	__u32 netns;
	__s32 ret;
	__u32 flags;
	__u32 packets;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 state;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 s_identity;
	__u32 d_identity;
	__u16 s_endpoint;
	__u16 d_endpoint;
	__u8 id_flags;
	__u8 pad0;
	__u16 pad1;
};

/*
 * TH_NET_REC_DNS: one UDP or TCP segment to/from a DNS port, followed by
 * payload_len bytes of its L4 payload (for TCP: the segment's payload, which
 * starts with the 2-byte length prefix when a message starts there).
 * Egress = sent by the local socket (query), ingress = received (response).
 */
struct th_dns {
	struct th_hdr hdr;
	__u64 cookie;
	__u64 proc_ktime;
	__u32 tgid;
	__u32 netns;
	__u32 ifindex;
	__u32 orig_len;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 payload_len;
	__u8 protocol;
	__u8 flags;
	__u16 pad0;
	__u32 pad1;
	__u8 saddr[16];
	__u8 daddr[16];
};

/*
 * th_net_udp (LRU hash): one entry per (socket, peer, direction); user space
 * sweeps it for the periodic counts. dir: 0 = send, 1 = receive.
 */
struct th_udp_key {
	__u64 cookie;
	__u8 addr[16];
	__u16 port;
	__u16 family;
	__u8 dir;
	__u8 pad0;
	__u16 pad1;
};

struct th_udp_flow {
	__u64 proc_ktime;
	__u64 first_ktime;
	__u64 last_ktime;
	__u64 packets;
	__u64 bytes;
	__u32 tgid;
	__u32 netns;
	__u16 sport;
	__u16 pad0;
	__u32 pad1;
	__u8 saddr[16];
};

/* th_net_cfg (array, one entry): written by user space. */
struct th_net_cfg {
	__u32 flags;
	__u16 dns_ports[TH_NET_DNS_PORTS];
	__u32 pad0;
};

/*
 * th_net_stats (per-CPU array, one entry), summed by user space.
 *   emitted/dropped[t - BASE]  records written / lost (ring full)
 *   sock_*                     socket-owner map inserts, deletes, failures
 *   close_untracked            TCP closes of sockets without an owner entry
 *   udp_flow_*                 new UDP flows / failed inserts
 *   dns_truncated              DNS payloads cut at TH_DNS_PAYLOAD_MAX
 */
struct th_net_stats {
	__u64 emitted[TH_NET_REC_MAX];
	__u64 dropped[TH_NET_REC_MAX];
	__u64 sock_inserts;
	__u64 sock_deletes;
	__u64 sock_update_err;
	__u64 close_untracked;
	__u64 udp_flow_inserts;
	__u64 udp_flow_err;
	__u64 dns_truncated;
	__u64 pad0;
};

/* layout:end */

TH_STATIC_ASSERT(sizeof(struct th_net) == 128, "th_net size");
TH_STATIC_ASSERT(sizeof(struct th_dns) == 96, "th_dns size");
TH_STATIC_ASSERT(sizeof(struct th_udp_key) == 32, "th_udp_key size");
TH_STATIC_ASSERT(sizeof(struct th_udp_flow) == 72, "th_udp_flow size");
TH_STATIC_ASSERT(sizeof(struct th_net_cfg) == 16, "th_net_cfg size");

#endif /* TH_NET_H */
