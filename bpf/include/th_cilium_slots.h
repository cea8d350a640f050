/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Slots for Cilium's identity maps, shared by every object that looks up
 * identities in the kernel (net.bpf.c, policy_connect.bpf.c). Each slot is an
 * ARRAY_OF_MAPS with one entry that user space (src/sensors/net/identity.ts)
 * keeps pointed at Cilium's current pinned map, so maps Cilium re-creates are
 * followed without reloading. Needs cilium_maps.h first.
 */
#ifndef TH_CILIUM_SLOTS_H
#define TH_CILIUM_SLOTS_H

const volatile __u16 th_cilium_cluster_id = 0;

/*
 * Never read: the inner templates name their key/value types through
 * pointers only, for which clang emits forward declarations; libbpf needs
 * the full types to size the inner maps.
 */
const volatile struct th_cilium_btf_anchor {
	struct ipcache_key ipcache_key;
	struct remote_endpoint_info ipcache_v2;
	struct remote_endpoint_info_v1 ipcache_v1;
	struct endpoint_key endpoint_key;
	struct endpoint_info endpoint_info;
} th_cilium_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);
		__type(key, struct ipcache_key);
		__type(value, struct remote_endpoint_info);
		__uint(max_entries, 1);
		__uint(map_flags, BPF_F_NO_PREALLOC);
	});
} th_cil_ipc_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);
		__type(key, struct ipcache_key);
		__type(value, struct remote_endpoint_info_v1);
		__uint(max_entries, 1);
		__uint(map_flags, BPF_F_NO_PREALLOC);
	});
} th_cil_ipc_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__type(key, struct endpoint_key);
		__type(value, struct endpoint_info);
		__uint(max_entries, 1);
		__uint(map_flags, BPF_F_NO_PREALLOC);
	});
} th_cil_lxc SEC(".maps");

/* cilium_lxc of a Cilium that preallocates its maps (map_flags 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__type(key, struct endpoint_key);
		__type(value, struct endpoint_info);
		__uint(max_entries, 1);
	});
} th_cil_lxc_pa SEC(".maps");

/* The current ipcache (v2 authoritative during an upgrade) and lxc maps, or NULL. */
static __always_inline void th_cilium_maps(void **ipc, void **lxc)
{
	__u32 zero = 0;

	*ipc = bpf_map_lookup_elem(&th_cil_ipc_v2, &zero);
	if (!*ipc)
		*ipc = bpf_map_lookup_elem(&th_cil_ipc_v1, &zero);
	*lxc = bpf_map_lookup_elem(&th_cil_lxc, &zero);
	if (!*lxc)
		*lxc = bpf_map_lookup_elem(&th_cil_lxc_pa, &zero);
}

#endif /* TH_CILIUM_SLOTS_H */
