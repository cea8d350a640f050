// SPDX-License-Identifier: GPL-2.0-only
/*
 * tetrahub process sensor: exec / fork / exit of thread groups.
 *
 * Only raw tracepoints (BPF_PROG_TYPE_RAW_TRACEPOINT) and CO-RE reads through
 * bpf_probe_read_kernel: no tp_btf, fentry or kprobes, so it loads on kernels
 * where "tracing" programs are unavailable.
 *
 * Records: see include/tetrahub_events.h. User-space configuration:
 *   .rodata  agent_tgid      tgid whose EXEC/CLONE/EXIT records are not emitted
 *   .rodata  cgroup_subsys_idx  0xffffffff = cgroup v2 (default), else a v1 subsystem id
 *   map      tetrahub_events ring buffer (max_entries = bytes, default 8 MiB)
 *   map      tetrahub_procs  hash __u32 tgid -> struct th_proc, pinned by name
 *   map      tetrahub_stats  per-CPU array[1] of struct th_stats
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tetrahub_events.h"
#include "th_ring.h"

char LICENSE[] SEC("license") = "GPL";

/* Not in vmlinux.h (macros). Stable values across the supported kernels. */
#define TH_PF_KTHREAD 0x00200000	/* include/linux/sched.h */
#define TH_SIGNAL_GROUP_EXIT 0x00000004 /* include/linux/sched/signal.h */

const volatile __u32 agent_tgid = 0;
/*
 * Which cgroup an EXEC record names (cgroup_id + cgroup_name):
 *   0xffffffff (default): the cgroup-v2 (default hierarchy) cgroup, id from
 *     bpf_get_current_cgroup_id();
 *   N: the cgroup of cgroup-v1 subsystem id N (the row index of the subsystem
 *     in /proc/cgroups, e.g. "memory" or "pids"), id = its kernfs node id.
 *     For hosts on cgroup v1 / hybrid, where the v2 cgroup is the root.
 */
const volatile __u32 cgroup_subsys_idx = 0xffffffff;

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
} tetrahub_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_PROCS_DEFAULT_ENTRIES);
	__type(key, __u32);
	__type(value, struct th_proc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tetrahub_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_stats);
} tetrahub_stats SEC(".maps");

/*
 * Per-CPU scratch for building an EXEC record before bpf_ringbuf_output.
 * Sizes are powers of two larger than any real offset + length so that every
 * access can be bounded with a mask the verifier understands.
 */
#define EV_BUF_SIZE 16384
#define CWD_BUF_SIZE 8192
#define M_OFF_FN 2047	/* offset after filename: <= 80 + 1023 */
#define M_OFF 8191	/* offsets after args / cwd: <= 7247 */
#define M_LEN 4095
#define M_TOTAL 16383

struct cwd_walk {
	__u64 dentry;
	__u64 vfsmnt;
	__u64 mnt;
	__u64 root_dentry;
	__u64 root_mnt;
	__u32 pos;
	__u32 flags;
	__u32 done;
	__u32 pad;
};

struct scratch {
	__u8 ev[EV_BUF_SIZE];
	__u8 cwd[CWD_BUF_SIZE];
	struct cwd_walk w;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} tetrahub_scratch SEC(".maps");

static __always_inline struct th_stats *get_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tetrahub_stats, &zero);
}

static __always_inline void count_record(__u32 type, int ok)
{
	struct th_stats *s = get_stats();

	if (!s)
		return;
	if (ok)
		s->emitted[type & (TH_REC_MAX - 1)]++;
	else
		s->dropped[type & (TH_REC_MAX - 1)]++;
}

static __always_inline void count_update_err(void)
{
	struct th_stats *s = get_stats();

	if (s)
		s->procs_update_err++;
}

/*
 * The cwd walk runs under bpf_loop (kernel >= 5.17) with its state kept in the
 * per-CPU scratch map rather than on the stack: the verifier then checks one
 * step instead of every path through TH_CWD_COMPONENTS_MAX unrolled steps.
 * The path is written backwards into cwd[pos, TH_CWD_MAX).
 */
static long cwd_step(__u32 i, void *unused)
{
	struct dentry *dentry, *mnt_root, *parent;
	struct vfsmount *vfsmnt;
	struct mount *mnt, *mnt_parent;
	const unsigned char *name;
	struct cwd_walk *w;
	struct scratch *s;
	__u32 zero = 0, pos, len;

	s = bpf_map_lookup_elem(&tetrahub_scratch, &zero);
	if (!s)
		return 1;
	w = &s->w;
	dentry = (void *)w->dentry;
	vfsmnt = (void *)w->vfsmnt;
	mnt = (void *)w->mnt;

	if (w->dentry == w->root_dentry && w->vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	if (dentry == mnt_root) {
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (!mnt_parent || mnt_parent == mnt) {
			w->done = 1; /* root of the mount tree */
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = (__u64)mnt_parent;
		w->vfsmnt = (__u64)mnt_parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (!parent || parent == dentry) {
		w->done = 1; /* root of a detached tree */
		return 1;
	}
	len = BPF_CORE_READ(dentry, d_name.len);
	name = BPF_CORE_READ(dentry, d_name.name);
	if (len > 255)
		len = 255;
	pos = w->pos;
	if (pos > TH_CWD_MAX || len + 1 > pos)
		return 1; /* does not fit: truncated */
	pos -= len + 1;
	if (bpf_probe_read_kernel(s->cwd + ((pos + 1) & M_LEN), len & 255, name) < 0) {
		w->flags |= TH_FLAG_ERROR_CWD;
		return 1;
	}
	s->cwd[pos & M_LEN] = '/';
	w->pos = pos;
	w->dentry = (__u64)parent;
	return 0;
}

/* Builds the cwd of task into s->cwd[pos, TH_CWD_MAX). Returns pos. */
static __always_inline __u32 build_cwd(struct task_struct *task, struct scratch *s, __u32 *flags)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct cwd_walk *w = &s->w;
	__u32 pos;

	w->pos = TH_CWD_MAX;
	w->flags = 0;
	w->done = 0;
	if (!fs) {
		*flags |= TH_FLAG_NOCWD;
		return TH_CWD_MAX;
	}
	w->dentry = (__u64)BPF_CORE_READ(fs, pwd.dentry);
	w->vfsmnt = (__u64)BPF_CORE_READ(fs, pwd.mnt);
	w->root_dentry = (__u64)BPF_CORE_READ(fs, root.dentry);
	w->root_mnt = (__u64)BPF_CORE_READ(fs, root.mnt);
	if (!w->dentry || !w->vfsmnt) {
		*flags |= TH_FLAG_NOCWD;
		return TH_CWD_MAX;
	}
	w->mnt = w->vfsmnt - bpf_core_field_offset(struct mount, mnt);

	bpf_loop(TH_CWD_COMPONENTS_MAX, cwd_step, NULL, 0);

	*flags |= w->flags;
	if (!w->done)
		*flags |= TH_FLAG_ERROR_PATH_RESOLUTION_CWD;
	pos = w->pos;
	if (pos > TH_CWD_MAX)
		pos = TH_CWD_MAX;
	if (pos == TH_CWD_MAX) {
		pos--;
		s->cwd[pos & M_LEN] = '/';
		if (w->done)
			*flags |= TH_FLAG_ROOTCWD;
	}
	return pos;
}

SEC("raw_tp/sched_process_exec")
int tetrahub_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct linux_binprm *bprm = (void *)ctx->args[2];
	struct th_proc *prev, val = {};
	const struct cred *cred;
	struct th_exec *ev;
	struct scratch *s;
	struct mm_struct *mm;
	const char *str;
	__u64 ktime, arg_start, arg_end, alen;
	__u32 zero = 0, tgid, flags = TH_FLAG_EXECVE, pos, clen, off, total;
	long n;

	ktime = bpf_ktime_get_boot_ns();
	tgid = BPF_CORE_READ(task, tgid);

	/* Parent linkage: the previous image of this pid, else the real parent. */
	val.ktime = ktime;
	prev = bpf_map_lookup_elem(&tetrahub_procs, &tgid);
	if (prev) {
		val.parent_pid = tgid;
		val.parent_ktime = prev->ktime;
	} else {
		__u32 ptgid = BPF_CORE_READ(task, real_parent, tgid);
		struct th_proc *pp = bpf_map_lookup_elem(&tetrahub_procs, &ptgid);

		val.parent_pid = ptgid;
		val.parent_ktime = pp ? pp->ktime : 0;
		flags |= TH_FLAG_MISS;
	}

	s = bpf_map_lookup_elem(&tetrahub_scratch, &zero);
	if (!s) {
		val.flags = flags;
		if (bpf_map_update_elem(&tetrahub_procs, &tgid, &val, BPF_ANY))
			count_update_err();
		return 0;
	}
	ev = (struct th_exec *)s->ev;

	/* filename */
	str = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(s->ev + sizeof(*ev), TH_FILENAME_MAX + 1, str);
	if (n > 0) {
		ev->filename_len = (n - 1) & 1023;
	} else {
		ev->filename_len = 0;
		flags |= TH_FLAG_ERROR_FILENAME;
	}
	off = (sizeof(*ev) + ev->filename_len) & M_OFF_FN;

	/* argv, raw, from the new mm */
	mm = BPF_CORE_READ(task, mm);
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	alen = arg_end > arg_start ? arg_end - arg_start : 0;
	if (alen > TH_ARGS_MAX) {
		alen = TH_ARGS_MAX;
		flags |= TH_FLAG_TRUNC_ARGS;
	}
	alen &= 8191;
	if (alen && bpf_probe_read_user(s->ev + off, alen, (void *)arg_start) < 0) {
		alen = 0;
		flags |= TH_FLAG_ERROR_ARGS;
		flags &= ~TH_FLAG_TRUNC_ARGS;
	}
	ev->args_len = alen;
	off = (off + alen) & M_OFF;

	/* cwd */
	pos = build_cwd(task, s, &flags);
	if (pos > TH_CWD_MAX)
		pos = TH_CWD_MAX;
	clen = (TH_CWD_MAX - pos) & M_LEN;
	if (clen && bpf_probe_read_kernel(s->ev + off, clen, s->cwd + (pos & M_LEN)) < 0) {
		clen = 0;
		flags |= TH_FLAG_ERROR_CWD;
	}
	ev->cwd_len = clen;
	off = (off + clen) & M_OFF;

	/* cgroup: id and kernfs name (see cgroup_subsys_idx) */
	str = NULL;
	if (cgroup_subsys_idx == 0xffffffff) {
		ev->cgroup_id = bpf_get_current_cgroup_id();
		str = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, name);
	} else {
		struct css_set *cset = BPF_CORE_READ(task, cgroups);
		struct cgroup_subsys_state *css = NULL;
		struct kernfs_node *kn = NULL;
		__u32 idx = cgroup_subsys_idx;

		ev->cgroup_id = 0;
		if (idx < bpf_core_field_size(cset->subsys) / sizeof(void *) &&
		    !bpf_probe_read_kernel(&css, sizeof(css),
					   (void *)cset + bpf_core_field_offset(cset->subsys) +
						   (idx & 63) * sizeof(void *)) &&
		    css) {
			kn = BPF_CORE_READ(css, cgroup, kn);
			if (kn) {
				ev->cgroup_id = BPF_CORE_READ(kn, id);
				str = BPF_CORE_READ(kn, name);
			}
		}
	}
	if (!ev->cgroup_id)
		flags |= TH_FLAG_ERROR_CGROUP_ID;
	n = str ? bpf_probe_read_kernel_str(s->ev + off, TH_CGROUP_NAME_MAX + 1, str) : -1;
	if (n > 0) {
		ev->cgroup_name_len = (n - 1) & 127;
	} else {
		ev->cgroup_name_len = 0;
		flags |= TH_FLAG_ERROR_CGROUP_NAME;
	}
	total = (off + ev->cgroup_name_len) & M_TOTAL;

	/* credentials */
	cred = BPF_CORE_READ(task, cred);
	ev->uid = BPF_CORE_READ(cred, uid.val);
	ev->gid = BPF_CORE_READ(cred, gid.val);
	ev->euid = BPF_CORE_READ(cred, euid.val);
	ev->egid = BPF_CORE_READ(cred, egid.val);
	if (bpf_core_field_exists(task->loginuid))
		ev->auid = BPF_CORE_READ(task, loginuid.val);
	else
		ev->auid = 0xffffffff;

	ev->hdr.type = TH_REC_EXEC;
	ev->hdr.version = TH_LAYOUT_VERSION;
	ev->hdr.pad0 = 0;
	ev->hdr.size = total;
	ev->hdr.ktime = ktime;
	ev->pid = tgid;
	ev->tid = BPF_CORE_READ(task, pid);
	ev->ppid = val.parent_pid;
	ev->flags = flags;
	ev->parent_ktime = val.parent_ktime;
	ev->pad1 = 0;

	val.flags = flags;
	if (bpf_map_update_elem(&tetrahub_procs, &tgid, &val, BPF_ANY))
		count_update_err();

	if (tgid == agent_tgid)
		return 0;
	if (total < sizeof(*ev))
		return 0;
	count_record(TH_REC_EXEC, bpf_ringbuf_output(&tetrahub_events, s->ev, total, th_rb_flags(&tetrahub_events)) == 0);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int tetrahub_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0];
	struct task_struct *child = (void *)ctx->args[1];
	struct th_proc val = {}, *pp;
	struct th_clone *ev;
	__u32 pid, tgid, ptgid, pflags;

	pid = BPF_CORE_READ(child, pid);
	tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0; /* a new thread, not a new process */
	pflags = BPF_CORE_READ(child, flags);
	if (pflags & TH_PF_KTHREAD)
		return 0;

	ptgid = BPF_CORE_READ(parent, tgid);
	val.ktime = bpf_ktime_get_boot_ns();
	val.parent_pid = ptgid;
	val.flags = TH_FLAG_CLONE;
	pp = bpf_map_lookup_elem(&tetrahub_procs, &ptgid);
	if (pp)
		val.parent_ktime = pp->ktime;
	else
		val.flags |= TH_FLAG_MISS;
	if (bpf_map_update_elem(&tetrahub_procs, &tgid, &val, BPF_ANY))
		count_update_err();

	if (tgid == agent_tgid)
		return 0;
	ev = bpf_ringbuf_reserve(&tetrahub_events, sizeof(*ev), 0);
	if (!ev) {
		count_record(TH_REC_CLONE, 0);
		return 0;
	}
	ev->hdr.type = TH_REC_CLONE;
	ev->hdr.version = TH_LAYOUT_VERSION;
	ev->hdr.pad0 = 0;
	ev->hdr.size = sizeof(*ev);
	ev->hdr.ktime = val.ktime;
	ev->pid = tgid;
	ev->tid = pid;
	ev->ppid = ptgid;
	ev->flags = val.flags;
	ev->parent_ktime = val.parent_ktime;
	bpf_ringbuf_submit(ev, th_rb_flags(&tetrahub_events));
	count_record(TH_REC_CLONE, 1);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int tetrahub_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct signal_struct *sig;
	struct th_proc *p;
	struct th_exit *ev;
	struct th_stats *st;
	__u64 proc_ktime;
	__u32 tgid, code;
	int live;

	/* signal->live is decremented before the tracepoint: 0 = last thread. */
	sig = BPF_CORE_READ(task, signal);
	live = BPF_CORE_READ(sig, live.counter);
	if (live != 0)
		return 0;

	tgid = BPF_CORE_READ(task, tgid);
	p = bpf_map_lookup_elem(&tetrahub_procs, &tgid);
	if (!p) {
		st = get_stats();
		if (st)
			st->exit_unknown++;
		return 0;
	}
	proc_ktime = p->ktime;
	/*
	 * Two threads exiting together may both see live == 0; only the one
	 * that deletes the entry reports the exit.
	 */
	if (bpf_map_delete_elem(&tetrahub_procs, &tgid))
		return 0;
	if (tgid == agent_tgid)
		return 0;

	/* What wait() reports (kernel/exit.c wait_task_zombie). */
	if (BPF_CORE_READ(sig, flags) & TH_SIGNAL_GROUP_EXIT)
		code = BPF_CORE_READ(sig, group_exit_code);
	else
		code = BPF_CORE_READ(task, exit_code);

	ev = bpf_ringbuf_reserve(&tetrahub_events, sizeof(*ev), 0);
	if (!ev) {
		count_record(TH_REC_EXIT, 0);
		return 0;
	}
	ev->hdr.type = TH_REC_EXIT;
	ev->hdr.version = TH_LAYOUT_VERSION;
	ev->hdr.pad0 = 0;
	ev->hdr.size = sizeof(*ev);
	ev->hdr.ktime = bpf_ktime_get_boot_ns();
	ev->pid = tgid;
	ev->tid = BPF_CORE_READ(task, pid);
	ev->proc_ktime = proc_ktime;
	ev->code = code;
	ev->pad1 = 0;
	bpf_ringbuf_submit(ev, th_rb_flags(&tetrahub_events));
	count_record(TH_REC_EXIT, 1);
	return 0;
}
