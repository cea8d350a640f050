// SPDX-License-Identifier: GPL-2.0-only
/*
 * tetrahub syscall sensor (opt-in): individual calls and per-process counts
 * of the syscalls user space selects, never all of them.
 *
 * raw_tp sys_enter / sys_exit see every syscall; the first thing each does
 * is an array lookup of the syscall number in th_sys_select, so unselected
 * syscalls cost one lookup. Selected ones then pass the process filters
 * (tgids, cgroups, binaries: any enabled set). Events are stashed at
 * sys_enter and emitted at sys_exit with the return value; counts are kept
 * in th_sys_counts and reported by user space. Records: th_syscall.h.
 *
 * x86_64: the syscall number at sys_exit comes from pt_regs->orig_ax.
 *
 * User-space configuration:
 *   .rodata  agent_tgid         tgid never reported
 *   map      th_sys_events      ring buffer (max_entries = bytes)
 *   map      th_sys_select      array[TH_SYS_NR_MAX] of __u32 TH_SYS_SEL_*
 *   map      th_sys_config      array[1] of struct th_sys_config
 *   map      th_sys_tgids       hash __u32 tgid -> __u8      (TH_SCFG_TGIDS)
 *   map      th_sys_cgroups     hash __u64 cgroup id -> __u8 (TH_SCFG_CGROUPS)
 *   map      th_sys_binaries    hash char[256] path -> __u8  (TH_SCFG_BINARIES)
 *   map      th_sys_bin_tgids   hash __u32 tgid -> __u8, kept by the exec/fork/exit
 *                               hooks below, seeded by user space from /proc
 *   map      th_sys_counts      hash th_sys_count_key -> __u64 (swept by user space)
 *   map      th_sys_stats       per-CPU array[1] of struct th_sys_stats
 *   map      tetrahub_procs     the process sensor's pinned map (read only)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "th_syscall.h"
#include "th_procs_map.h"
#include "th_ring.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 agent_tgid = 0;

/* Never read: puts the record struct into the object's BTF (clang emits only
 * the types of maps, globals and functions) for the layout test. */
const volatile struct th_sys_btf_anchor {
	struct th_syscall rec;
} th_sys_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TH_SYS_EVENTS_DEFAULT_BYTES);
} th_sys_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TH_SYS_NR_MAX);
	__type(key, __u32);
	__type(value, __u32);
} th_sys_select SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_sys_config);
} th_sys_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_SYS_TGIDS_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} th_sys_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_SYS_CGROUPS_ENTRIES);
	__type(key, __u64);
	__type(value, __u8);
} th_sys_cgroups SEC(".maps");

struct bin_key {
	char path[TH_SYS_BINARY_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_SYS_BINARIES_ENTRIES);
	__type(key, struct bin_key);
	__type(value, __u8);
} th_sys_binaries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_SYS_BIN_TGIDS_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} th_sys_bin_tgids SEC(".maps");

struct sys_args {
	__u64 a[6];
	__u32 nr;
	__u32 pad;
};

/* LRU: a thread killed inside a syscall never reaches sys_exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_SYS_ARGS_DEFAULT_ENTRIES);
	__type(key, __u32);
	__type(value, struct sys_args);
} th_sys_args SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_SYS_COUNTS_DEFAULT_ENTRIES);
	__type(key, struct th_sys_count_key);
	__type(value, __u64);
} th_sys_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_sys_stats);
} th_sys_stats SEC(".maps");

/* Per-CPU room for a binaries key: too big for comfort on the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bin_key);
} th_sys_scratch SEC(".maps");

static __always_inline struct th_sys_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_sys_stats, &zero);
}

#define STAT_INC(field)                          \
	do {                                     \
		struct th_sys_stats *__s = stats(); \
		if (__s)                         \
			__s->field++;            \
	} while (0)

/* The TH_SYS_SEL_* bits of nr, 0 when not selected or out of range. */
static __always_inline __u32 selected(long nr)
{
	__u32 key = (__u32)nr, *sel;

	if (nr < 0 || nr >= TH_SYS_NR_MAX)
		return 0;
	sel = bpf_map_lookup_elem(&th_sys_select, &key);
	return sel ? *sel : 0;
}

static __always_inline int process_passes(__u32 tgid)
{
	struct th_sys_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&th_sys_config, &zero);
	if (!cfg || !cfg->flags)
		return 1;
	if ((cfg->flags & TH_SCFG_TGIDS) && bpf_map_lookup_elem(&th_sys_tgids, &tgid))
		return 1;
	if ((cfg->flags & TH_SCFG_BINARIES) && bpf_map_lookup_elem(&th_sys_bin_tgids, &tgid))
		return 1;
	if (cfg->flags & TH_SCFG_CGROUPS) {
		__u64 cg = bpf_get_current_cgroup_id();

		if (bpf_map_lookup_elem(&th_sys_cgroups, &cg))
			return 1;
	}
	return 0;
}

static __always_inline void count_call(__u32 tgid, __u32 nr)
{
	struct th_sys_count_key k = { .tgid = tgid, .nr = nr, .proc_ktime = th_proc_ktime(tgid) };
	__u64 one = 1, *c;

	c = bpf_map_lookup_elem(&th_sys_counts, &k);
	if (c) {
		__sync_fetch_and_add(c, 1);
		return;
	}
	if (!bpf_map_update_elem(&th_sys_counts, &k, &one, BPF_NOEXIST))
		return;
	/* lost the race to another thread of the same process, or full */
	c = bpf_map_lookup_elem(&th_sys_counts, &k);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		STAT_INC(counts_full);
}

static __always_inline void emit(const struct sys_args *a, __u32 tgid, __u32 tid, long ret, __u32 rflags)
{
	struct th_sys_stats *st = stats();
	struct th_syscall *e;

	e = bpf_ringbuf_reserve(&th_sys_events, sizeof(*e), 0);
	if (!e) {
		if (st)
			st->dropped++;
		return;
	}
	e->hdr.type = TH_REC_SYSCALL;
	e->hdr.version = TH_LAYOUT_VERSION;
	e->hdr.pad0 = 0;
	e->hdr.size = sizeof(*e);
	e->hdr.ktime = bpf_ktime_get_boot_ns();
	e->proc_ktime = th_proc_ktime(tgid);
	e->args[0] = a->a[0];
	e->args[1] = a->a[1];
	e->args[2] = a->a[2];
	e->args[3] = a->a[3];
	e->args[4] = a->a[4];
	e->args[5] = a->a[5];
	e->ret = ret;
	e->pid = tgid;
	e->tid = tid;
	e->nr = a->nr;
	e->rflags = rflags;
	bpf_ringbuf_submit(e, th_rb_flags(&th_sys_events));
	if (st)
		st->emitted++;
}

SEC("raw_tp/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = (long)ctx->args[1];
	__u32 sel = selected(nr), tgid, tid;
	struct sys_args a;
	__u64 id;

	if (!sel)
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	if (tgid == agent_tgid || !process_passes(tgid))
		return 0;
	if (sel & TH_SYS_SEL_COUNT)
		count_call(tgid, (__u32)nr);
	if (!(sel & TH_SYS_SEL_EVENT))
		return 0;
	/* x86_64 syscall ABI (libbpf 1.1 has no PARM6 accessor) */
	a.a[0] = BPF_CORE_READ(regs, di);
	a.a[1] = BPF_CORE_READ(regs, si);
	a.a[2] = BPF_CORE_READ(regs, dx);
	a.a[3] = BPF_CORE_READ(regs, r10);
	a.a[4] = BPF_CORE_READ(regs, r8);
	a.a[5] = BPF_CORE_READ(regs, r9);
	a.nr = (__u32)nr;
	a.pad = 0;
	if (sel & TH_SYS_SEL_AT_ENTER) {
		emit(&a, tgid, tid, 0, TH_SF_AT_ENTER);
		return 0;
	}
	if (bpf_map_update_elem(&th_sys_args, &tid, &a, BPF_ANY))
		STAT_INC(args_full);
	return 0;
}

SEC("raw_tp/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long ret = (long)ctx->args[1];
	long nr = BPF_CORE_READ(regs, orig_ax);
	__u32 sel = selected(nr), tid;
	struct sys_args *p, a;
	__u64 id;

	if (!(sel & TH_SYS_SEL_EVENT) || (sel & TH_SYS_SEL_AT_ENTER))
		return 0;
	id = bpf_get_current_pid_tgid();
	tid = (__u32)id;
	p = bpf_map_lookup_elem(&th_sys_args, &tid);
	if (!p)
		return 0; /* filtered out at sys_enter */
	a = *p;
	bpf_map_delete_elem(&th_sys_args, &tid);
	if (a.nr != (__u32)nr)
		return 0;
	emit(&a, id >> 32, tid, ret, 0);
	return 0;
}

/*
 * Binary filter: keep th_sys_bin_tgids = the processes whose current image
 * was exec'd from a path in th_sys_binaries (as passed to execve; user
 * space also inserts the realpath of each configured binary).
 */
SEC("raw_tp/sched_process_exec")
int sys_bin_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct linux_binprm *bprm = (void *)ctx->args[2];
	struct bin_key *k;
	__u32 zero = 0, tgid;
	__u8 one = 1;
	int i;

	k = bpf_map_lookup_elem(&th_sys_scratch, &zero);
	if (!k)
		return 0;
	for (i = 0; i < TH_SYS_BINARY_LEN / 8; i++)
		((__u64 *)k->path)[i] = 0;
	bpf_probe_read_kernel_str(k->path, sizeof(k->path), BPF_CORE_READ(bprm, filename));
	tgid = BPF_CORE_READ(task, tgid);
	if (bpf_map_lookup_elem(&th_sys_binaries, k)) {
		if (bpf_map_update_elem(&th_sys_bin_tgids, &tgid, &one, BPF_ANY))
			STAT_INC(bin_tgids_full);
	} else {
		bpf_map_delete_elem(&th_sys_bin_tgids, &tgid);
	}
	return 0;
}

/* A forked process runs its parent's image until it execs. */
SEC("raw_tp/sched_process_fork")
int sys_bin_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0];
	struct task_struct *child = (void *)ctx->args[1];
	__u32 ptgid, pid, tgid;
	__u8 one = 1;

	pid = BPF_CORE_READ(child, pid);
	tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0;
	ptgid = BPF_CORE_READ(parent, tgid);
	if (!bpf_map_lookup_elem(&th_sys_bin_tgids, &ptgid))
		return 0;
	if (bpf_map_update_elem(&th_sys_bin_tgids, &tgid, &one, BPF_ANY))
		STAT_INC(bin_tgids_full);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int sys_bin_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	__u32 tgid;

	/* signal->live reaches 0 with the last thread of the group */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&th_sys_bin_tgids, &tgid);
	return 0;
}
