/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * cilium_maps.h — key/value layouts of Cilium's pinned identity maps, so that
 * our BPF programs (and test fixtures) can declare maps of the very same
 * layout and read Cilium's maps in the kernel.
 *
 * Written from shared/reference/cilium-maps.md §3–§4 (not copied from
 * upstream). Struct names follow Cilium's so that a BTF comparison against a
 * node's maps (`bpftool btf dump map pinned ...`) lines up member by member.
 *
 *   map                 Cilium   type      key                 value
 *   cilium_ipcache      1.16/17  LPM_TRIE  ipcache_key (24 B)  remote_endpoint_info_v1 (12 B)
 *   cilium_ipcache_v2   1.18+    LPM_TRIE  ipcache_key (24 B)  remote_endpoint_info (24 B)
 *   cilium_lxc          1.16+    HASH      endpoint_key (20 B) endpoint_info (48 B)
 *
 * Byte order: integers host order; IP addresses network order.
 * Needs __u8/__u16/__u32/__u64 (include vmlinux.h or <linux/types.h> first).
 * Read-only for us: never update Cilium's maps from a program.
 */
#ifndef TETRAHUB_CILIUM_MAPS_H
#define TETRAHUB_CILIUM_MAPS_H

/* Pinned under <bpffs>/tc/globals/ by Cilium (LIBBPF_PIN_BY_NAME). */
#define CILIUM_IPCACHE_V1_MAP_NAME "cilium_ipcache"
#define CILIUM_IPCACHE_V2_MAP_NAME "cilium_ipcache_v2"
#define CILIUM_LXC_MAP_NAME "cilium_lxc"

/* Cilium defaults (IPCACHE_MAP_SIZE, ENDPOINTS_MAP_SIZE); a node may differ. */
#define CILIUM_IPCACHE_MAP_SIZE 512000
#define CILIUM_ENDPOINTS_MAP_SIZE 65535

/* family bytes of both keys */
#define CILIUM_ENDPOINT_KEY_IPV4 1
#define CILIUM_ENDPOINT_KEY_IPV6 2

/*
 * LPM prefix length of a single-address lookup: the 32 static bits
 * (cluster_id, pad1, family) plus the address bits.
 */
#define CILIUM_IPCACHE_STATIC_PREFIX 32
#define CILIUM_IPCACHE_PREFIX_V4 (CILIUM_IPCACHE_STATIC_PREFIX + 32)  /* 64 */
#define CILIUM_IPCACHE_PREFIX_V6 (CILIUM_IPCACHE_STATIC_PREFIX + 128) /* 160 */

/* endpoint_info.flags */
#define CILIUM_ENDPOINT_F_HOST (1U << 0)     /* entry for a local node IP */
#define CILIUM_ENDPOINT_F_ATHOSTNS (1U << 1) /* newer releases only */

/* Reserved identities the maps can yield (§5.1). */
#define CILIUM_ID_UNKNOWN 0
#define CILIUM_ID_HOST 1
#define CILIUM_ID_WORLD 2
#define CILIUM_ID_WORLD_IPV4 9
#define CILIUM_ID_WORLD_IPV6 10

/*
 * Key of both ipcache maps (packed, 24 B). The LPM trie matches on
 * lpm_prefixlen bits starting at cluster_id, so cluster_id/pad1/family always
 * match exactly and the prefix applies to the address.
 */
struct ipcache_key {
	__u32 lpm_prefixlen; /* Cilium: struct bpf_lpm_trie_key lpm_key (4 B header) */
	__u16 cluster_id;    /* 0 = local cluster */
	__u8 pad1;
	__u8 family;         /* CILIUM_ENDPOINT_KEY_IPV4 / _IPV6 */
	union {
		struct {
			__u32 ip4; /* network order */
			__u32 pad4;
			__u32 pad5;
			__u32 pad6;
		};
		__u8 ip6[16]; /* network order */
	};
} __attribute__((packed));

/* cilium_ipcache value, Cilium 1.16/1.17 (12 B). Only sec_identity is stable. */
struct remote_endpoint_info_v1 {
	__u32 sec_identity;    /* numeric security identity */
	__u32 tunnel_endpoint; /* IPv4, network order */
	__u16 pad;             /* older releases: node_id */
	__u8 key;              /* IPsec key index */
	__u8 flag_skip_tunnel:1,
	     pad2:7;
};

/* cilium_ipcache_v2 value, Cilium 1.18+ (24 B). */
struct remote_endpoint_info {
	__u32 sec_identity;
	union {
		struct {
			__u32 ip4; /* network order */
			__u32 pad1;
			__u32 pad2;
			__u32 pad3;
		};
		__u8 ip6[16];
	} tunnel_endpoint;
	__u16 pad;
	__u8 key;
	/* first declared = least significant bit */
	__u8 flag_skip_tunnel:1,
	     flag_has_tunnel_ep:1,
	     flag_ipv6_tunnel_ep:1,
	     flag_remote_cluster:1,
	     flag_unroutable:1, /* absent in some 1.18 builds */
	     pad4:3;
};

/* Key of cilium_lxc (packed, 20 B). Exact-match hash: zero every pad byte. */
struct endpoint_key {
	union {
		struct {
			__u32 ip4; /* network order */
			__u32 pad1;
			__u32 pad2;
			__u32 pad3;
		};
		__u8 ip6[16];
	};
	__u8 family; /* CILIUM_ENDPOINT_KEY_IPV4 / _IPV6 */
	__u8 key;    /* 0 */
	__u16 cluster_id;
} __attribute__((packed));

/* Value of cilium_lxc (48 B, 8-byte aligned; 4 B of implicit padding at 12). */
struct endpoint_info {
	__u32 ifindex;        /* host-side veth/netkit */
	__u16 unused;         /* formerly sec_label */
	__u16 lxc_id;         /* Cilium endpoint ID */
	__u32 flags;          /* CILIUM_ENDPOINT_F_* */
	__u64 mac;            /* mac_t: MAC octets in wire order in the low 6 bytes */
	__u64 node_mac;
	__u32 sec_id;         /* security identity */
	__u32 parent_ifindex; /* 1.17+; pad on 1.16 */
	__u32 pad[2];
} __attribute__((aligned(8)));

_Static_assert(sizeof(struct ipcache_key) == 24, "ipcache_key must be 24 bytes");
_Static_assert(sizeof(struct remote_endpoint_info_v1) == 12, "cilium_ipcache value must be 12 bytes");
_Static_assert(sizeof(struct remote_endpoint_info) == 24, "cilium_ipcache_v2 value must be 24 bytes");
_Static_assert(sizeof(struct endpoint_key) == 20, "endpoint_key must be 20 bytes");
_Static_assert(sizeof(struct endpoint_info) == 48, "endpoint_info must be 48 bytes");
_Static_assert(__builtin_offsetof(struct ipcache_key, family) == 7, "ipcache_key.family at 7");
_Static_assert(__builtin_offsetof(struct ipcache_key, ip4) == 8, "ipcache_key address at 8");
_Static_assert(__builtin_offsetof(struct remote_endpoint_info, pad) == 20, "remote_endpoint_info.pad at 20");
_Static_assert(__builtin_offsetof(struct remote_endpoint_info, key) == 22, "remote_endpoint_info.key at 22");
_Static_assert(__builtin_offsetof(struct remote_endpoint_info_v1, key) == 10, "remote_endpoint_info_v1.key at 10");
_Static_assert(__builtin_offsetof(struct endpoint_key, family) == 16, "endpoint_key.family at 16");
_Static_assert(__builtin_offsetof(struct endpoint_key, cluster_id) == 18, "endpoint_key.cluster_id at 18");
_Static_assert(__builtin_offsetof(struct endpoint_info, lxc_id) == 6, "endpoint_info.lxc_id at 6");
_Static_assert(__builtin_offsetof(struct endpoint_info, mac) == 16, "endpoint_info.mac at 16");
_Static_assert(__builtin_offsetof(struct endpoint_info, sec_id) == 32, "endpoint_info.sec_id at 32");
_Static_assert(__builtin_offsetof(struct endpoint_info, parent_ifindex) == 36, "endpoint_info.parent_ifindex at 36");

#endif /* TETRAHUB_CILIUM_MAPS_H */
