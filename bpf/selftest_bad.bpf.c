// SPDX-License-Identifier: GPL-2.0
// Compiles fine but the verifier must reject it: the map value is used
// without a NULL check. The addon's tests assert on the resulting error.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH); // array lookups with a constant key are never NULL on new kernels
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bad_map SEC(".maps");

SEC("raw_tp/sys_enter")
int bad_prog(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&bad_map, &key);

	*v += 1; // no NULL check: "invalid mem access 'map_value_or_null'"
	return 0;
}
