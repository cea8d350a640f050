// SPDX-License-Identifier: GPL-2.0
// STAND-IN fixture (tests only): declares Cilium's identity maps with exactly
// Cilium's layouts (bpf/include/cilium_maps.h) and LIBBPF_PIN_BY_NAME, so that
// loading the object with a private pin root creates and pins maps that look
// like Cilium's /sys/fs/bpf/tc/globals/<name>. No programs: only the maps.
//
// One object per map (chosen with -DFIXTURE_*), so that the fixture can
// create, drop and re-create each map on its own, like Cilium does.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "cilium_maps.h"

#if defined(FIXTURE_IPCACHE_V1)
// Cilium 1.16/1.17: cilium_ipcache, 12-byte value.
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct remote_endpoint_info_v1);
	__uint(max_entries, CILIUM_IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache SEC(".maps");

#elif defined(FIXTURE_IPCACHE_V2)
// Cilium 1.18+: cilium_ipcache_v2, 24-byte value.
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct remote_endpoint_info);
	__uint(max_entries, CILIUM_IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache_v2 SEC(".maps");

#elif defined(FIXTURE_LXC)
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, CILIUM_ENDPOINTS_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lxc SEC(".maps");

#elif defined(FIXTURE_IPCACHE_BAD)
// Negative tests: a map named like Cilium's ipcache whose value layout no
// Cilium release has (16 bytes), which the reader must refuse.
struct bad_remote_endpoint_info {
	__u32 sec_identity;
	__u32 tunnel_endpoint;
	__u64 something_new;
};
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct bad_remote_endpoint_info);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache SEC(".maps");

#elif defined(FIXTURE_LXC_SHIFTED)
// Negative tests: cilium_lxc with Cilium's sizes (20/48) but sec_id and
// lxc_id moved, which only the BTF check can tell apart.
struct endpoint_info_shifted {
	__u32 ifindex;
	__u16 lxc_id;
	__u16 unused;
	__u32 flags;
	__u64 mac;
	__u64 node_mac;
	__u32 parent_ifindex;
	__u32 pad[2];
	__u32 sec_id;
} __attribute__((aligned(8)));
_Static_assert(sizeof(struct endpoint_info_shifted) == 48, "same size as endpoint_info");
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info_shifted);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lxc SEC(".maps");

#else
#error "define one of FIXTURE_IPCACHE_V1, FIXTURE_IPCACHE_V2, FIXTURE_LXC, FIXTURE_IPCACHE_BAD, FIXTURE_LXC_SHIFTED"
#endif

char LICENSE[] SEC("license") = "GPL";
