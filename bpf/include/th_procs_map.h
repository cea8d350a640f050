/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * th_procs_map.h — the pinned process map tetrahub_procs, for sensors that
 * only read it (file, syscall). Include after vmlinux.h and bpf_helpers.h.
 *
 * MUST stay identical to the definition in bpf/process.bpf.c (type, key,
 * value, max_entries, pinning): libbpf reuses the map pinned by name under
 * the object's pin_root_path only when the definitions are compatible, and
 * fails the load otherwise. User space opens every sensor object with the
 * same pinRoot and the same mapSizes.tetrahub_procs as the process sensor.
 */
#ifndef TH_PROCS_MAP_H
#define TH_PROCS_MAP_H

#include "tetrahub_events.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_PROCS_DEFAULT_ENTRIES);
	__type(key, __u32);
	__type(value, struct th_proc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tetrahub_procs SEC(".maps");

/* ktime of the current image of tgid (the exec_id ktime), 0 when unknown. */
static __always_inline __u64 th_proc_ktime(__u32 tgid)
{
	struct th_proc *p = bpf_map_lookup_elem(&tetrahub_procs, &tgid);

	return p ? p->ktime : 0;
}

#endif /* TH_PROCS_MAP_H */
