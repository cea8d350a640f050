// SPDX-License-Identifier: GPL-2.0-only
/*
 * Ring-consumer benchmark source. When a thread of target_tgid calls
 * getppid(2), one bpf_loop writes records_per_trigger EXEC records (the
 * tetrahub_events.h layout, 220 bytes with a realistic filename / argv / cwd /
 * cgroup name) into bench_events, so that the consumer, not the trigger, is
 * the bottleneck. Failed reservations are counted in bench_stats.
 *
 * User-space configuration:
 *   .rodata  target_tgid          tgid whose getppid() triggers (0: nobody)
 *   .rodata  records_per_trigger  records written per trigger (default 1024)
 *   map      bench_events         ring buffer (max_entries = bytes, 8 MiB)
 *   map      bench_stats          per-CPU array[1] of struct th_stats
 *                                 (emitted/dropped[TH_REC_EXEC])
 * Record fields: pid = target tgid, tid = index within the trigger (0..K-1),
 * hdr.ktime = bpf_ktime_get_boot_ns() when written, parent_ktime = trigger time,
 * ppid = the trigger's sequence number (per CPU, wraps).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tetrahub_events.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u32 records_per_trigger = 1024;

/*
 * Never read: puts every record type into the object's BTF (clang only emits
 * the types of maps, globals and functions), so that user space and
 * src/sensors/process/layout.test.ts can check offsets against the compiled
 * object.
 */
const volatile struct th_btf_anchor {
	struct th_exec exec;
	struct th_clone clone;
	struct th_exit exit;
	struct th_proc proc;
	struct th_stats stats;
} th_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TH_EVENTS_DEFAULT_BYTES);
} bench_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_stats);
} bench_stats SEC(".maps");

#define B_FILENAME "/usr/bin/curl"
#define B_ARGS "curl\0-sS\0--retry\0" "3\0-H\0Accept: application/json\0" \
	"https://api.example.com/v1/items?page=2\0"
#define B_CWD "/home/alice/src/tetrahub"
#define B_CGROUP "session-12.scope"
#define B_TAIL_LEN (sizeof(B_FILENAME) + sizeof(B_ARGS) + sizeof(B_CWD) + sizeof(B_CGROUP) - 4)
#define B_TAIL_CAP 144

static const char bench_tail[B_TAIL_CAP] __attribute__((aligned(8))) =
	B_FILENAME B_ARGS B_CWD B_CGROUP;

struct bench_rec {
	struct th_exec ev;
	char tail[B_TAIL_CAP];
};

_Static_assert(B_TAIL_LEN <= B_TAIL_CAP, "bench tail");

struct loop_ctx {
	__u64 trigger_ktime;
	__u64 cgroup_id;
	__u32 tgid;
	__u32 n;
	__u32 seq;
	__u32 emitted;
	__u32 dropped;
	__u32 pad;
};

static long emit_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;
	struct bench_rec *r;

	r = bpf_ringbuf_reserve(&bench_events, sizeof(*r), 0);
	if (!r) {
		lc->dropped = lc->n - i;
		return 1;
	}
	r->ev.hdr.type = TH_REC_EXEC;
	r->ev.hdr.version = TH_LAYOUT_VERSION;
	r->ev.hdr.pad0 = 0;
	r->ev.hdr.size = sizeof(struct th_exec) + B_TAIL_LEN;
	r->ev.hdr.ktime = bpf_ktime_get_boot_ns();
	r->ev.pid = lc->tgid;
	r->ev.tid = i;
	r->ev.ppid = lc->seq;
	r->ev.flags = TH_FLAG_EXECVE;
	r->ev.parent_ktime = lc->trigger_ktime;
	r->ev.cgroup_id = lc->cgroup_id;
	r->ev.uid = 1000;
	r->ev.gid = 1000;
	r->ev.euid = 1000;
	r->ev.egid = 1000;
	r->ev.auid = 1000;
	r->ev.filename_len = sizeof(B_FILENAME) - 1;
	r->ev.args_len = sizeof(B_ARGS) - 1;
	r->ev.cwd_len = sizeof(B_CWD) - 1;
	r->ev.cgroup_name_len = sizeof(B_CGROUP) - 1;
	r->ev.pad1 = 0;
	__builtin_memcpy(r->tail, bench_tail, B_TAIL_CAP);
	/* One wake-up per trigger, not one per record the consumer catches up on. */
	bpf_ringbuf_submit(r, i + 1 == lc->n ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	lc->emitted++;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_seq SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int bench_trigger(void *ctx)
{
	struct loop_ctx lc = {};
	struct th_stats *st;
	__u32 zero = 0, *seq;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!target_tgid || tgid != target_tgid)
		return 0;
	seq = bpf_map_lookup_elem(&bench_seq, &zero);
	if (seq)
		lc.seq = (*seq)++;
	lc.trigger_ktime = bpf_ktime_get_boot_ns();
	lc.cgroup_id = bpf_get_current_cgroup_id();
	lc.tgid = tgid;
	lc.n = records_per_trigger;
	bpf_loop(lc.n, emit_one, &lc, 0);

	st = bpf_map_lookup_elem(&bench_stats, &zero);
	if (st) {
		st->emitted[TH_REC_EXEC] += lc.emitted;
		st->dropped[TH_REC_EXEC] += lc.dropped;
	}
	return 0;
}
