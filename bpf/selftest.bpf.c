// SPDX-License-Identifier: GPL-2.0
// Tiny object used by the native addon's tests (src/kernel/native.test.ts).
// Every piece exercises one addon feature: rodata, ring buffer, hash map,
// pin-by-name maps, per-CPU maps, and a cgroup program.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

// Set from user space before load (OpenObjectOptions.rodata).
const volatile __u32 target_tgid = 0;
const volatile __u16 blocked_port = 0;
const volatile __u64 magic = 0;

// 20 bytes on purpose: not a multiple of 8, so batches need padding.
struct selftest_rec {
	__u32 seq;
	__u32 tgid;
	__u32 pid;
	__u32 magic_lo;
	__u32 magic_hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} selftest_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} selftest_map SEC(".maps");

// Pinned under OpenObjectOptions.pinRoot, so a second load shares it.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} selftest_pinned SEC(".maps");

// Index 0: records emitted, 1: ring reservations that failed (drops),
// 2: connect4 calls seen, 3: connect4 calls denied.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} selftest_counters SEC(".maps");

__u32 seq_counter = 0;

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&selftest_counters, &idx);

	if (v)
		*v += 1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int selftest_getppid(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct selftest_rec *r;

	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	r = bpf_ringbuf_reserve(&selftest_rb, sizeof(*r), 0);
	if (!r) {
		count(1);
		return 0;
	}
	// Not atomic: the fetch-and-add return value needs -mcpu=v3, and the
	// tests drive this from one thread, so a plain increment is exact.
	r->seq = ++seq_counter;
	r->tgid = id >> 32;
	r->pid = (__u32)id;
	r->magic_lo = (__u32)magic;
	r->magic_hi = (__u32)(magic >> 32);
	bpf_ringbuf_submit(r, 0);
	count(0);
	return 0;
}

// Denies IPv4 connects to blocked_port from the cgroup it is attached to.
SEC("cgroup/connect4")
int selftest_connect4(struct bpf_sock_addr *ctx)
{
	count(2);
	if (blocked_port && ctx->user_port == bpf_htons(blocked_port)) {
		count(3);
		return 0;
	}
	return 1;
}
