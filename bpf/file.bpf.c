// SPDX-License-Identifier: GPL-2.0-only
/*
 * tetrahub file sensor: opens, path changes and per-file I/O byte counts.
 *
 * Only syscall tracepoints (BPF_PROG_TYPE_TRACEPOINT): each syscall has a
 * sys_enter program that stashes the raw arguments per thread and a
 * sys_exit program that builds the record with the return value, so only
 * the syscalls we watch pay for it. Reads/writes are not events: their
 * bytes are added per (tgid, fd) to th_file_fds and reported at close.
 *
 * Paths: an opened file (and the fd of fchmod/fchown/ftruncate/close) is
 * resolved by walking its dentries up to the task's root, crossing mounts;
 * a path argument is copied as passed, with the absolute directory it is
 * relative to (cwd or dirfd, walked the same way) as a separate "base";
 * user space joins and normalises. Records: include/th_file.h.
 *
 * User-space configuration:
 *   .rodata  agent_tgid          tgid whose syscalls are ignored
 *   map      th_file_events      ring buffer (max_entries = bytes)
 *   map      th_file_config      array[1] of struct th_file_config
 *   map      th_file_stats       per-CPU array[1] of struct th_file_stats
 *   map      th_file_fds         hash th_file_fdkey -> th_file_io (swept by user space)
 *   map      th_file_skip_cg     hash __u64 cgroup id -> __u8 (TH_FCFG_SKIP_CGROUPS)
 *   map      tetrahub_procs      the process sensor's pinned map (read only)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "th_file.h"
#include "th_procs_map.h"
#include "th_ring.h"

char LICENSE[] SEC("license") = "GPL";

/* uapi values, not in vmlinux.h (macros) */
#define TH_AT_FDCWD -100
#define TH_AT_REMOVEDIR 0x200
#define TH_AT_SYMLINK_NOFOLLOW 0x100
#define TH_O_CREAT_WRONLY_TRUNC 01101

/* th_file_config.flags bit for the cgroup exclusion set (kept out of the
 * generated layout: it only tells the kernel to look the set up). */
#define TH_FCFG_SKIP_CGROUPS 0x8

const volatile __u32 agent_tgid = 0;

/* Never read: puts the record struct into the object's BTF (clang emits only
 * the types of maps, globals and functions) for the layout test. */
const volatile struct th_file_btf_anchor {
	struct th_file file;
} th_file_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TH_FILE_EVENTS_DEFAULT_BYTES);
} th_file_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_file_config);
} th_file_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_file_stats);
} th_file_stats SEC(".maps");

/* Raw syscall arguments from sys_enter, per thread. LRU: a thread killed
 * inside a syscall never reaches sys_exit, its entry ages out. */
struct file_args {
	__u64 a[6];
	__u32 nr;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_FILE_ARGS_DEFAULT_ENTRIES);
	__type(key, __u32);
	__type(value, struct file_args);
} th_file_args SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_FILE_FDS_DEFAULT_ENTRIES);
	__type(key, struct th_file_fdkey);
	__type(value, struct th_file_io);
} th_file_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_FILE_SKIP_CGROUPS_ENTRIES);
	__type(key, __u64);
	__type(value, __u8);
} th_file_skip_cg SEC(".maps");

/*
 * Per-CPU scratch. rec holds the record being built: every tail offset is
 * masked with M_OFF (real offsets stay below sizeof(th_file) + 3 * 4095)
 * and every copy is at most 4096 bytes, so rec is M_OFF + 1 + 4096 long.
 * walk receives a path built backwards, ending at WALK_END; the slack
 * after it covers a name copy at the masked position.
 */
#define M_OFF 16383
#define REC_BUF (M_OFF + 1 + 4096)
#define WALK_END 4096
#define M_WALK 4095
#define WALK_BUF (WALK_END + 256)

struct walk_state {
	__u64 dentry;
	__u64 vfsmnt;
	__u64 mnt;
	__u64 root_dentry;
	__u64 root_mnt;
	__u32 pos;
	__u32 done;
};

struct scratch {
	__u8 rec[REC_BUF];
	__u8 walk[WALK_BUF];
	__u64 win[8];
	struct walk_state w;
	struct file_args a;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} th_file_scratch SEC(".maps");

static __always_inline struct th_file_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_file_stats, &zero);
}

#define STAT_INC(field)                           \
	do {                                      \
		struct th_file_stats *__s = stats(); \
		if (__s)                          \
			__s->field++;             \
	} while (0)

static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_file_scratch, &zero);
}

/*
 * One step of the dentry walk, under bpf_loop so that the verifier checks a
 * single step. State lives in the scratch map (bpf_loop's context must be
 * on the stack). Returns 1 to stop: done, or the next name does not fit
 * (then w->done stays 0 and the caller flags the path truncated).
 */
static long walk_step(__u32 i, void *unused)
{
	struct dentry *d, *parent, *mnt_root;
	struct mount *m, *mp;
	struct vfsmount *vm;
	const unsigned char *name;
	struct walk_state *w;
	struct scratch *s;
	__u32 len, pos;

	s = scratch();
	if (!s)
		return 1;
	w = &s->w;
	if (w->dentry == w->root_dentry && w->vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	d = (void *)w->dentry;
	m = (void *)w->mnt;
	vm = (void *)w->vfsmnt;
	parent = BPF_CORE_READ(d, d_parent);
	mnt_root = BPF_CORE_READ(vm, mnt_root);
	if (d == mnt_root || d == parent || !parent) {
		mp = BPF_CORE_READ(m, mnt_parent);
		/* top of the mount tree, or a dentry detached from its mount */
		if (d != mnt_root || !mp || mp == m) {
			w->done = 1;
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (__u64)mp;
		w->vfsmnt = (__u64)mp + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	if (len > 255)
		len = 255;
	pos = w->pos;
	/* keep pos >= 1: a path never exceeds TH_FILE_PATH_MAX bytes */
	if (pos > WALK_END || pos < len + 2)
		return 1;
	pos -= len + 1;
	if (bpf_probe_read_kernel(s->walk + ((pos + 1) & M_WALK), len & 255, name) < 0)
		return 1;
	s->walk[pos & M_WALK] = '/';
	w->pos = pos;
	w->dentry = (__u64)parent;
	return 0;
}

/*
 * Builds the absolute path of (dentry, vfsmnt), as seen from the task's
 * root, into s->walk[pos, WALK_END); with slash it ends in '/'. Returns pos.
 */
static __always_inline __u32 walk_path(struct scratch *s, struct task_struct *task,
				       struct dentry *d, struct vfsmount *vm, int slash, __u32 *trunc)
{
	struct walk_state *w = &s->w;
	struct fs_struct *fs;
	__u32 pos;

	fs = BPF_CORE_READ(task, fs);
	w->root_dentry = fs ? (__u64)BPF_CORE_READ(fs, root.dentry) : 0;
	w->root_mnt = fs ? (__u64)BPF_CORE_READ(fs, root.mnt) : 0;
	w->dentry = (__u64)d;
	w->vfsmnt = (__u64)vm;
	w->mnt = (__u64)vm - bpf_core_field_offset(struct mount, mnt);
	w->done = 0;
	w->pos = WALK_END;
	if (slash) {
		s->walk[WALK_END - 1] = '/';
		w->pos = WALK_END - 1;
	}
	bpf_loop(TH_FILE_WALK_MAX, walk_step, NULL, 0);
	if (!w->done)
		*trunc = 1;
	pos = w->pos;
	if (pos >= WALK_END) { /* the root itself */
		pos = WALK_END - 1;
		s->walk[WALK_END - 1] = '/';
	}
	return pos;
}

/* Appends s->walk[pos, WALK_END) at rec[off]; returns its length. */
static __always_inline __u32 put_walk(struct scratch *s, __u32 off, __u32 pos)
{
	__u32 len;

	if (pos < 1 || pos >= WALK_END)
		return 0;
	len = (WALK_END - pos) & M_WALK;
	if (bpf_probe_read_kernel(s->rec + (off & M_OFF), len, s->walk + (pos & M_WALK)) < 0)
		return 0;
	return len;
}

/* The struct file behind fd in the current task, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct files_struct *files;
	struct fdtable *fdt;
	struct file **arr;
	struct file *f = NULL;

	if (fd < 0)
		return NULL;
	files = BPF_CORE_READ(task, files);
	if (!files)
		return NULL;
	fdt = BPF_CORE_READ(files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]) < 0)
		return NULL;
	return f;
}

/* Appends the resolved path of fd at rec[off]; returns its length (0: no file). */
static __always_inline __u32 put_fd_path(struct scratch *s, struct task_struct *task, __u32 off,
					 long fd, __u32 *trunc)
{
	struct file *f = fd_file(task, fd);
	struct dentry *d;
	struct vfsmount *vm;

	if (!f)
		return 0;
	d = BPF_CORE_READ(f, f_path.dentry);
	vm = BPF_CORE_READ(f, f_path.mnt);
	if (!d || !vm)
		return 0;
	return put_walk(s, off, walk_path(s, task, d, vm, 0, trunc));
}

/*
 * Appends one path argument at rec[off]: the base directory (when the
 * user string is relative and not verbatim) then the user string.
 */
static __always_inline __u32 put_path_arg(struct scratch *s, struct task_struct *task, __u32 off,
					  __u64 uptr, long dirfd, int verbatim, __u16 *base_len,
					  __u16 *path_len, __u32 *trunc, __u32 *err)
{
	struct dentry *d = NULL;
	struct vfsmount *vm = NULL;
	__u32 blen = 0;
	char c = 0;
	long n;

	*base_len = 0;
	*path_len = 0;
	if (bpf_probe_read_user(&c, 1, (void *)uptr) < 0) {
		*err = 1;
		return off;
	}
	if (c != '/' && !verbatim) {
		if (dirfd == TH_AT_FDCWD) {
			struct fs_struct *fs = BPF_CORE_READ(task, fs);

			if (fs) {
				d = BPF_CORE_READ(fs, pwd.dentry);
				vm = BPF_CORE_READ(fs, pwd.mnt);
			}
		} else {
			struct file *f = fd_file(task, dirfd);

			if (f) {
				d = BPF_CORE_READ(f, f_path.dentry);
				vm = BPF_CORE_READ(f, f_path.mnt);
			}
		}
		if (d && vm)
			blen = put_walk(s, off, walk_path(s, task, d, vm, 1, trunc));
		else
			*err = 1;
	}
	*base_len = blen;
	off = (off + blen) & M_OFF;
	n = bpf_probe_read_user_str(s->rec + off, TH_FILE_NAME_MAX + 1, (void *)uptr);
	if (n <= 0) {
		*err = 1;
		return off;
	}
	*path_len = (n - 1) & M_WALK;
	return (off + *path_len) & M_OFF;
}

/*
 * True when rec[off, off+len) equals an excluded prefix or continues it
 * with '/'. Compares 8-byte words under the per-word masks from user space.
 */
static __always_inline int excluded(struct scratch *s, struct th_file_config *cfg, __u32 off, __u32 len)
{
	__u8 *win = (__u8 *)s->win;
	__u32 i, k, plen;
	__u64 diff;

	if (!cfg->nprefixes)
		return 0;
	if (bpf_probe_read_kernel(s->win, sizeof(s->win), s->rec + (off & M_OFF)) < 0)
		return 0;
	for (i = 0; i < TH_FILE_PREFIXES; i++) {
		struct th_file_prefix *p = &cfg->prefix[i];

		if (i >= cfg->nprefixes)
			break;
		plen = p->len;
		if (plen == 0 || plen > TH_FILE_PREFIX_LEN_MAX || len < plen)
			continue;
		diff = 0;
		for (k = 0; k < 8; k++)
			diff |= (s->win[k] ^ p->word[k]) & p->mask[k];
		if (diff)
			continue;
		if (len == plen || win[plen & 63] == '/')
			return 1;
	}
	return 0;
}

static __always_inline void emit(struct scratch *s, __u32 total, __u16 op)
{
	struct th_file_stats *st = stats();
	long err;

	if (total < sizeof(struct th_file) || total > TH_FILE_RECORD_MAX)
		return;
	err = bpf_ringbuf_output(&th_file_events, s->rec, total, th_rb_flags(&th_file_events));
	if (!st)
		return;
	if (err)
		st->dropped[op & (TH_FOP_MAX - 1)]++;
	else
		st->emitted[op & (TH_FOP_MAX - 1)]++;
}

/*
 * sys_enter of every watched syscall: stash the raw arguments. Only the
 * syscall's own nargs are read: attaching a tracepoint program that reads
 * past the event's fields fails (EACCES, max_ctx_offset).
 */
static __always_inline int file_enter(struct trace_event_raw_sys_enter *ctx, int nargs)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct th_file_config *cfg;
	struct file_args a;

	if ((__u32)(id >> 32) == agent_tgid)
		return 0;
	cfg = bpf_map_lookup_elem(&th_file_config, &zero);
	if (cfg && (cfg->flags & TH_FCFG_SKIP_CGROUPS)) {
		__u64 cg = bpf_get_current_cgroup_id();

		if (bpf_map_lookup_elem(&th_file_skip_cg, &cg))
			return 0;
	}
	a.a[0] = nargs > 0 ? ctx->args[0] : 0;
	a.a[1] = nargs > 1 ? ctx->args[1] : 0;
	a.a[2] = nargs > 2 ? ctx->args[2] : 0;
	a.a[3] = nargs > 3 ? ctx->args[3] : 0;
	a.a[4] = nargs > 4 ? ctx->args[4] : 0;
	a.a[5] = nargs > 5 ? ctx->args[5] : 0;
	a.nr = (__u32)ctx->id;
	a.pad = 0;
	if (bpf_map_update_elem(&th_file_args, &tid, &a, BPF_ANY))
		STAT_INC(args_full);
	return 0;
}

/* Which argument holds what, per syscall; -1: none. */
struct desc {
	__u16 op;
	__s8 name1;	/* path string */
	__s8 dfd1;	/* its dirfd (-1: AT_FDCWD) */
	__s8 fd1;	/* an fd instead of a path */
	__s8 name2;
	__s8 dfd2;
	__s8 flags;	/* -2: struct open_how at args[2] */
	__s8 mode;
	__s8 uid;
	__s8 gid;
	__u8 verbatim1;	/* path1 is not a path relative to cwd (symlink target, mount source) */
	__u32 flags_const;
};

static __always_inline __u64 arg_of(struct scratch *s, int i)
{
	return i >= 0 && i < 6 ? s->a.a[i] : 0;
}

#define ARG(i) arg_of(s, (i))

static __always_inline int file_exit(struct trace_event_raw_sys_exit *ctx, const struct desc *dsc)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32, zero = 0;
	__u32 off, trunc1 = 0, trunc2 = 0, err1 = 0, err2 = 0, rflags = 0;
	struct th_file_config *cfg;
	struct task_struct *task;
	struct file_args *a;
	struct th_file *e;
	struct scratch *s;
	__u16 op = dsc->op;
	long ret = ctx->ret;

	a = bpf_map_lookup_elem(&th_file_args, &tid);
	if (!a) {
		if (tgid != agent_tgid)
			STAT_INC(args_miss);
		return 0;
	}
	s = scratch();
	cfg = bpf_map_lookup_elem(&th_file_config, &zero);
	if (!s || !cfg) {
		bpf_map_delete_elem(&th_file_args, &tid);
		return 0;
	}
	s->a = *a;
	bpf_map_delete_elem(&th_file_args, &tid);
	if (s->a.nr != (__u32)ctx->id)
		return 0; /* left over from a thread that never reached sys_exit */
	if (ret < 0 && ((cfg->flags & TH_FCFG_NO_FAILED) ||
			(op == TH_FOP_OPEN && (cfg->flags & TH_FCFG_NO_FAILED_OPENS)))) {
		STAT_INC(excluded);
		return 0;
	}

	task = (struct task_struct *)bpf_get_current_task();
	e = (struct th_file *)s->rec;
	e->flags = dsc->flags_const;
	e->mode = 0;
	e->uid = 0xffffffff;
	e->gid = 0xffffffff;
	e->fd = -1;
	e->base2_len = 0;
	e->path2_len = 0;
	off = sizeof(*e);

	if (dsc->flags >= 0)
		e->flags = (__u32)ARG(dsc->flags);
	if (dsc->mode >= 0)
		e->mode = (__u32)ARG(dsc->mode);
	if (dsc->uid >= 0)
		e->uid = (__u32)ARG(dsc->uid);
	if (dsc->gid >= 0)
		e->gid = (__u32)ARG(dsc->gid);
	if (dsc->flags == -2) {
		struct open_how how = {};

		bpf_probe_read_user(&how, sizeof(how), (void *)ARG(2));
		e->flags = (__u32)how.flags;
		e->mode = (__u32)how.mode;
	}
	if (op == TH_FOP_UNLINK && (e->flags & TH_AT_REMOVEDIR))
		op = TH_FOP_RMDIR;

	if (op == TH_FOP_OPEN && ret >= 0) {
		/* the file actually opened, symlinks and all */
		e->base_len = 0;
		e->path_len = put_fd_path(s, task, off, ret, &trunc1);
		if (!e->path_len)
			err1 = 1;
		else
			rflags |= TH_FF_RESOLVED;
		off = (off + e->path_len) & M_OFF;
		e->fd = dsc->dfd1 >= 0 ? (__s32)ARG(dsc->dfd1) : TH_AT_FDCWD;
	} else if (dsc->fd1 >= 0) {
		e->fd = (__s32)ARG(dsc->fd1);
		e->base_len = 0;
		e->path_len = put_fd_path(s, task, off, e->fd, &trunc1);
		if (!e->path_len)
			err1 = 1;
		else
			rflags |= TH_FF_RESOLVED;
		off = (off + e->path_len) & M_OFF;
	} else {
		long dirfd = dsc->dfd1 >= 0 ? (long)(__s32)ARG(dsc->dfd1) : TH_AT_FDCWD;

		e->fd = dirfd;
		off = put_path_arg(s, task, off, ARG(dsc->name1), dirfd, dsc->verbatim1, &e->base_len,
				   &e->path_len, &trunc1, &err1);
	}
	if (dsc->name2 >= 0) {
		long dirfd = dsc->dfd2 >= 0 ? (long)(__s32)ARG(dsc->dfd2) : TH_AT_FDCWD;

		off = put_path_arg(s, task, off, ARG(dsc->name2), dirfd, 0, &e->base2_len,
				   &e->path2_len, &trunc2, &err2);
	}

	if (trunc1)
		rflags |= TH_FF_TRUNC;
	if (trunc2)
		rflags |= TH_FF_TRUNC2;
	if (err1)
		rflags |= TH_FF_ERR;
	if (err2)
		rflags |= TH_FF_ERR2;
	/* Exclusions look at the object's own path; a truncated path has no known head. */
	if (op != TH_FOP_MOUNT && op != TH_FOP_UMOUNT && op != TH_FOP_SYMLINK && !trunc1 &&
	    excluded(s, cfg, sizeof(*e), (__u32)e->base_len + e->path_len)) {
		STAT_INC(excluded);
		return 0;
	}
	if (trunc1 || trunc2)
		STAT_INC(truncated);

	e->hdr.type = TH_REC_FILE;
	e->hdr.version = TH_LAYOUT_VERSION;
	e->hdr.pad0 = 0;
	e->hdr.size = off;
	e->hdr.ktime = bpf_ktime_get_boot_ns();
	e->proc_ktime = th_proc_ktime(tgid);
	e->ret = ret;
	e->bytes_read = 0;
	e->bytes_written = 0;
	e->pid = tgid;
	e->tid = tid;
	e->nr = s->a.nr;
	e->rflags = rflags;
	e->op = op;
	e->pad1 = 0;
	emit(s, off, op);

	if (op == TH_FOP_OPEN && ret >= 0 && (cfg->flags & TH_FCFG_TRACK_IO)) {
		struct th_file_fdkey k = { .tgid = tgid, .fd = (__s32)ret };
		struct th_file_io io = { .open_ktime = e->hdr.ktime, .proc_ktime = e->proc_ktime };

		if (bpf_map_update_elem(&th_file_fds, &k, &io, BPF_ANY))
			STAT_INC(fds_full);
	}
	return 0;
}

#define ENTER(sys, nargs)                                                 \
	SEC("tracepoint/syscalls/sys_enter_" #sys)                        \
	int enter_##sys(struct trace_event_raw_sys_enter *ctx)            \
	{                                                                 \
		return file_enter(ctx, nargs);                            \
	}

#define EXIT(sys, ...)                                                    \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                         \
	int exit_##sys(struct trace_event_raw_sys_exit *ctx)              \
	{                                                                 \
		const struct desc d = { .name1 = -1, .dfd1 = -1, .fd1 = -1, \
					.name2 = -1, .dfd2 = -1, .flags = -1, \
					.mode = -1, .uid = -1, .gid = -1,     \
					__VA_ARGS__ };                        \
		return file_exit(ctx, &d);                                \
	}

#define HOOK(sys, nargs, ...) ENTER(sys, nargs) EXIT(sys, __VA_ARGS__)

/* EXIT's defaults (-1: none) are meant to be overridden per syscall. */
#pragma clang diagnostic ignored "-Winitializer-overrides"

/* Argument counts and positions: include/linux/syscalls.h. */
HOOK(open, 3, .op = TH_FOP_OPEN, .name1 = 0, .flags = 1, .mode = 2)
HOOK(openat, 4, .op = TH_FOP_OPEN, .dfd1 = 0, .name1 = 1, .flags = 2, .mode = 3)
HOOK(openat2, 4, .op = TH_FOP_OPEN, .dfd1 = 0, .name1 = 1, .flags = -2)
HOOK(creat, 2, .op = TH_FOP_OPEN, .name1 = 0, .mode = 1, .flags_const = TH_O_CREAT_WRONLY_TRUNC)
HOOK(unlink, 1, .op = TH_FOP_UNLINK, .name1 = 0)
HOOK(unlinkat, 3, .op = TH_FOP_UNLINK, .dfd1 = 0, .name1 = 1, .flags = 2)
HOOK(rename, 2, .op = TH_FOP_RENAME, .name1 = 0, .name2 = 1)
HOOK(renameat, 4, .op = TH_FOP_RENAME, .dfd1 = 0, .name1 = 1, .dfd2 = 2, .name2 = 3)
HOOK(renameat2, 5, .op = TH_FOP_RENAME, .dfd1 = 0, .name1 = 1, .dfd2 = 2, .name2 = 3, .flags = 4)
HOOK(chmod, 2, .op = TH_FOP_CHMOD, .name1 = 0, .mode = 1)
HOOK(fchmod, 2, .op = TH_FOP_CHMOD, .fd1 = 0, .mode = 1)
HOOK(fchmodat, 3, .op = TH_FOP_CHMOD, .dfd1 = 0, .name1 = 1, .mode = 2)
HOOK(fchmodat2, 4, .op = TH_FOP_CHMOD, .dfd1 = 0, .name1 = 1, .mode = 2, .flags = 3)
HOOK(chown, 3, .op = TH_FOP_CHOWN, .name1 = 0, .uid = 1, .gid = 2)
HOOK(fchown, 3, .op = TH_FOP_CHOWN, .fd1 = 0, .uid = 1, .gid = 2)
HOOK(lchown, 3, .op = TH_FOP_CHOWN, .name1 = 0, .uid = 1, .gid = 2, .flags_const = TH_AT_SYMLINK_NOFOLLOW)
HOOK(fchownat, 5, .op = TH_FOP_CHOWN, .dfd1 = 0, .name1 = 1, .uid = 2, .gid = 3, .flags = 4)
HOOK(truncate, 2, .op = TH_FOP_TRUNCATE, .name1 = 0)
HOOK(ftruncate, 2, .op = TH_FOP_TRUNCATE, .fd1 = 0)
HOOK(mkdir, 2, .op = TH_FOP_MKDIR, .name1 = 0, .mode = 1)
HOOK(mkdirat, 3, .op = TH_FOP_MKDIR, .dfd1 = 0, .name1 = 1, .mode = 2)
HOOK(rmdir, 1, .op = TH_FOP_RMDIR, .name1 = 0)
HOOK(symlink, 2, .op = TH_FOP_SYMLINK, .name1 = 0, .verbatim1 = 1, .name2 = 1)
HOOK(symlinkat, 3, .op = TH_FOP_SYMLINK, .name1 = 0, .verbatim1 = 1, .dfd2 = 1, .name2 = 2)
HOOK(link, 2, .op = TH_FOP_LINK, .name1 = 0, .name2 = 1)
HOOK(linkat, 5, .op = TH_FOP_LINK, .dfd1 = 0, .name1 = 1, .dfd2 = 2, .name2 = 3, .flags = 4)
HOOK(mount, 5, .op = TH_FOP_MOUNT, .name1 = 0, .verbatim1 = 1, .name2 = 1, .flags = 3)
/* umount2(2) is SYSCALL_DEFINE2(umount, ...): its tracepoint is sys_*_umount. */
HOOK(umount, 2, .op = TH_FOP_UMOUNT, .name1 = 0, .flags = 1)

/*
 * close: report the bytes counted for this fd, with its path, while the fd
 * still points to the file. Files without I/O need no record: their open
 * was reported.
 */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct th_file_fdkey k = { .tgid = id >> 32, .fd = (__s32)ctx->args[0] };
	struct task_struct *task;
	struct th_file_io *p, io;
	struct th_file *e;
	struct scratch *s;
	__u32 trunc = 0, off;

	p = bpf_map_lookup_elem(&th_file_fds, &k);
	if (!p)
		return 0;
	io = *p;
	bpf_map_delete_elem(&th_file_fds, &k);
	if (!io.bytes_read && !io.bytes_written)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	e = (struct th_file *)s->rec;
	off = sizeof(*e);
	e->base_len = 0;
	e->path_len = put_fd_path(s, task, off, k.fd, &trunc);
	off = (off + e->path_len) & M_OFF;
	e->base2_len = 0;
	e->path2_len = 0;
	e->rflags = (e->path_len ? TH_FF_RESOLVED : TH_FF_ERR) | (trunc ? TH_FF_TRUNC : 0);
	if (trunc)
		STAT_INC(truncated);
	e->hdr.type = TH_REC_FILE;
	e->hdr.version = TH_LAYOUT_VERSION;
	e->hdr.pad0 = 0;
	e->hdr.size = off;
	e->hdr.ktime = bpf_ktime_get_boot_ns();
	e->proc_ktime = th_proc_ktime(k.tgid); /* who closes: may have exec'd since the open */
	e->ret = 0;
	e->bytes_read = io.bytes_read;
	e->bytes_written = io.bytes_written;
	e->pid = k.tgid;
	e->tid = (__u32)id;
	e->nr = (__u32)ctx->id;
	e->flags = 0;
	e->mode = 0;
	e->uid = 0xffffffff;
	e->gid = 0xffffffff;
	e->fd = k.fd;
	e->op = TH_FOP_CLOSE;
	e->pad1 = 0;
	emit(s, off, TH_FOP_CLOSE);
	return 0;
}

/*
 * Bytes moved: sys_exit tracepoints carry only the return value, so the fd
 * (first argument) is read back from the syscall's saved user registers.
 */
static __always_inline int file_io(struct trace_event_raw_sys_exit *ctx, int write)
{
	long ret = ctx->ret;
	struct th_file_fdkey k;
	struct th_file_io *io;
	struct pt_regs *regs;

	if (ret <= 0)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.fd = (__s32)BPF_CORE_READ(regs, di);
	io = bpf_map_lookup_elem(&th_file_fds, &k);
	if (!io)
		return 0;
	if (write)
		__sync_fetch_and_add(&io->bytes_written, ret);
	else
		__sync_fetch_and_add(&io->bytes_read, ret);
	return 0;
}

#define IO(sys, write)                                                    \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                         \
	int io_##sys(struct trace_event_raw_sys_exit *ctx)                \
	{                                                                 \
		return file_io(ctx, write);                               \
	}

IO(read, 0)
IO(readv, 0)
IO(pread64, 0)
IO(write, 1)
IO(writev, 1)
IO(pwrite64, 1)

#define TH_F_DUPFD 0
#define TH_F_DUPFD_CLOEXEC 1030

/*
 * A duplicate of a tracked fd is tracked too, with its own byte counts:
 * shells open a redirection target at some fd and dup2 it onto 1.
 */
static __always_inline int file_dup(struct trace_event_raw_sys_exit *ctx, int is_fcntl)
{
	long ret = ctx->ret;
	struct th_file_fdkey k, nk;
	struct th_file_io *io, nio = {};
	struct pt_regs *regs;

	if (ret < 0)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (is_fcntl) {
		long cmd = BPF_CORE_READ(regs, si);

		if (cmd != TH_F_DUPFD && cmd != TH_F_DUPFD_CLOEXEC)
			return 0;
	}
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.fd = (__s32)BPF_CORE_READ(regs, di);
	if (k.fd == (__s32)ret)
		return 0; /* dup2(fd, fd) */
	io = bpf_map_lookup_elem(&th_file_fds, &k);
	if (!io)
		return 0;
	nio.open_ktime = io->open_ktime;
	nio.proc_ktime = io->proc_ktime;
	nk.tgid = k.tgid;
	nk.fd = (__s32)ret;
	if (bpf_map_update_elem(&th_file_fds, &nk, &nio, BPF_ANY))
		STAT_INC(fds_full);
	return 0;
}

#define DUP(sys, is_fcntl)                                                \
	SEC("tracepoint/syscalls/sys_exit_" #sys)                         \
	int dup_##sys(struct trace_event_raw_sys_exit *ctx)               \
	{                                                                 \
		return file_dup(ctx, is_fcntl);                           \
	}

DUP(dup, 0)
DUP(dup2, 0)
DUP(dup3, 0)
DUP(fcntl, 1)
