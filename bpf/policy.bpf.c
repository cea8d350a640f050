// SPDX-License-Identifier: GPL-2.0-only
/*
 * tetrahub generic TracingPolicy hook: data-driven programs configured by
 * user space from a compiled policy (src/policy/engine/). One object
 * instance per policy hook; user space loads only the programs the hook
 * needs and attaches them with a target override:
 *
 *   pol_tp_enter / pol_tp_exit    tracepoint (syscalls/sys_enter_X + sys_exit_X
 *                                 for syscall hooks without kprobes, or any
 *                                 tracepoint with args read by format offset)
 *   pol_kp_sys_enter[_ovr]        kprobe on __x64_sys_X (args in the inner pt_regs)
 *   pol_kp_enter[_ovr] / pol_kp_exit  kprobe / kretprobe on a kernel function
 *                                 (_ovr: with bpf_override_return, for Override)
 *   pol_lsm_*                     BPF-LSM hooks (Override = return -errno)
 *   pol_exec / pol_fork / pol_exit  matchBinaries / matchPIDs followForks state
 *
 * Flow: enter reads the raw values, decodes the args into the record's args
 * area, evaluates the selectors (OR'ed, parts AND'ed), and either runs the
 * first matching selector's actions or, when the hook wants its return
 * value, stashes the record per thread until exit evaluates matchReturnArgs.
 *
 * User-space configuration:
 *   .rodata agent_tgid             never matched
 *   th_pol_cfg        array[1] of struct th_pol_cfg
 *   th_pol_str_eq     hash {id, s[TH_POL_STR_LEN]} -> u8
 *   th_pol_str_pre    LPM  th_pol_strkey -> u8
 *   th_pol_str_post   LPM  th_pol_strkey (reversed bytes) -> u8
 *   th_pol_tasks      LRU tgid -> th_pol_task (kept by exec/fork/exit, seeded from /proc)
 *   th_pol_counters   per-CPU array[1] of th_pol_counters
 *   th_pol_events     ring buffer
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "th_policy.h"
#include "th_procs_map.h"
#include "th_ring.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 agent_tgid = 0;

const volatile struct th_pol_btf_anchor {
	struct th_pol_event ev;
	struct th_pol_cfg cfg;
	struct th_pol_counters c;
	struct th_pol_strkey k;
	struct th_pol_ratekey r;
	struct th_pol_task t;
} th_pol_btf_anchor = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TH_POL_EVENTS_DEFAULT_BYTES);
} th_pol_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_pol_cfg);
} th_pol_cfg SEC(".maps");

struct eq_key {
	__u32 id;
	__u8 s[TH_POL_STR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TH_POL_STR_ENTRIES);
	__type(key, struct eq_key);
	__type(value, __u8);
} th_pol_str_eq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TH_POL_STR_ENTRIES);
	__type(key, struct th_pol_strkey);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} th_pol_str_pre SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TH_POL_STR_ENTRIES);
	__type(key, struct th_pol_strkey);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} th_pol_str_post SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_POL_TASK_ENTRIES);
	__type(key, __u32);
	__type(value, struct th_pol_task);
} th_pol_tasks SEC(".maps");

/* LRU: a thread killed inside the call never reaches exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_POL_STASH_ENTRIES);
	__type(key, __u32);
	__type(value, struct th_pol_event);
} th_pol_stash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TH_POL_RATE_ENTRIES);
	__type(key, struct th_pol_ratekey);
	__type(value, __u64);
} th_pol_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct th_pol_counters);
} th_pol_counters SEC(".maps");

struct pol_scratch {
	struct th_pol_event ev;
	struct th_pol_strkey key;
	/* per arg: NUL-padded string, and its reverse (Postfix) */
	__u8 fwd[TH_POL_MAX_ARGS][256];
	__u8 rev[TH_POL_MAX_ARGS][256];
	__u8 path[512];
	__s64 vals[TH_POL_MAX_ARGS];
	__u32 lens[TH_POL_MAX_ARGS];
	__u32 pad;
	__u64 raw[6];
	/* path walk state (th_path_step) */
	__u64 pw_d;
	__u64 pw_mnt;
	__u32 pw_pos;
	__u32 pw_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pol_scratch);
} th_pol_scratch SEC(".maps");

enum { K_TP = 0, K_KPROBE = 1, K_LSM = 2 };

#define EPERM_ 1

static __always_inline struct th_pol_counters *counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_pol_counters, &zero);
}

#define CNT(field)                                      \
	do {                                            \
		struct th_pol_counters *__c = counters(); \
		if (__c)                                \
			__c->field++;                   \
	} while (0)

/* Masks in the register right before use: clang drops masks it can prove
 * redundant, and the verifier then loses the bound (spilled 32-bit values). */
static __always_inline __u64 area_off(__u64 x)
{
	asm volatile("%0 &= 2047" : "+r"(x));
	return x;
}

/* Arg index kept bounded in the register (rows 5-7 stay inside the value). */
static __always_inline __u32 arg_idx(__u32 x)
{
	asm volatile("%0 &= 7" : "+r"(x));
	return x;
}

/* Global functions take no pointers: 6.1 treats pointer args as plain
 * memory, which map helpers refuse as keys; they look up the scratch and
 * the config themselves. */
static __always_inline struct pol_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_pol_scratch, &zero);
}

static __always_inline struct th_pol_cfg *pol_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&th_pol_cfg, &zero);
}

static __always_inline void zero256(__u8 *p)
{
	int i;

	for (i = 0; i < 32; i++)
		((__u64 *)p)[i] = 0;
}

/*
 * d_path by hand: walk dentries and mounts up to the root, prepending names;
 * the result goes to sc->fwd[i]. Global (verified once). Returns length |
 * TH_IF_* bits.
 */
/* One step of the walk up from sc->pw_d: 1 = go on, 0 = done. Global: verified once. */
__attribute__((noinline)) int th_path_step(void)
{
	struct pol_scratch *sc = scratch();
	struct dentry *d, *parent, *mroot;
	struct mount *mnt, *mp;
	const unsigned char *name;
	__u32 pos, len;

	if (!sc)
		return 0;
	d = (struct dentry *)sc->pw_d;
	mnt = (struct mount *)sc->pw_mnt;
	pos = sc->pw_pos;
	if (!d || pos > 256)
		return 0;
	parent = BPF_CORE_READ(d, d_parent);
	mroot = BPF_CORE_READ(mnt, mnt.mnt_root);
	if (d == mroot) {
		mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt)
			return 0;
		sc->pw_d = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		sc->pw_mnt = (__u64)mp;
		return 1;
	}
	if (d == parent)
		return 0;
	name = BPF_CORE_READ(d, d_name.name);
	len = BPF_CORE_READ(d, d_name.len) & 255;
	if (len + 1 > pos) {
		sc->pw_flags |= TH_IF_TRUNC;
		return 0;
	}
	pos -= len;
	bpf_probe_read_kernel(sc->path + (pos & 255), len, name);
	pos -= 1;
	sc->path[pos & 255] = '/';
	sc->pw_pos = pos;
	sc->pw_d = (__u64)parent;
	return 1;
}

/*
 * d_path by hand: walk dentries and mounts up to the root, prepending names;
 * the result goes to sc->fwd[i]. Returns length | TH_IF_* bits.
 */
__attribute__((noinline)) int th_build_path(__u64 dentry, __u64 vfsmnt, __u32 i)
{
	struct pol_scratch *sc = scratch();
	__u32 pos, n;
	int k;

	if (!sc || i >= TH_POL_MAX_ARGS)
		return TH_IF_ERROR;
	if (!dentry)
		return TH_IF_ERROR;
	sc->pw_d = dentry;
	sc->pw_mnt = (__u64)container_of((struct vfsmount *)vfsmnt, struct mount, mnt);
	sc->pw_pos = 256;
	sc->pw_flags = 0;
	for (k = 0; k < TH_POL_PATH_DEPTH; k++) {
		if (!th_path_step())
			break;
	}
	if (k == TH_POL_PATH_DEPTH)
		sc->pw_flags |= TH_IF_TRUNC;
	pos = sc->pw_pos;
	if (pos >= 256) {
		pos = 255;
		sc->path[255] = '/';
	}
	n = 256 - pos;
	if (n > TH_POL_STR_MAX)
		n = TH_POL_STR_MAX;
	bpf_probe_read_kernel(sc->fwd[arg_idx(i)], n & 255, sc->path + (pos & 255));
	return (n & 255) | (sc->pw_flags & (TH_IF_TRUNC | TH_IF_ERROR));
}

static __always_inline int file_path(struct file *f, __u32 i)
{
	if (!f)
		return TH_IF_ERROR;
	return th_build_path((__u64)BPF_CORE_READ(f, f_path.dentry), (__u64)BPF_CORE_READ(f, f_path.mnt), i);
}

static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **arr;
	struct file *f = NULL;
	unsigned int max;

	if (!fdt || fd < 0)
		return NULL;
	max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned long)fd >= max)
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

static __always_inline __u64 slot(const __u64 *raw, __u32 i)
{
	switch (i) {
	case 1: return raw[1];
	case 2: return raw[2];
	case 3: return raw[3];
	case 4: return raw[4];
	case 5: return raw[5];
	}
	return raw[0];
}

static __always_inline __s64 norm_int(__u64 v, const struct th_pol_arg *a)
{
	int signed_ = a->flags & TH_AF_SIGNED;

	switch (a->size) {
	case 1:
		return signed_ ? (__s64)(__s8)v : (__s64)(__u8)v;
	case 2:
		return signed_ ? (__s64)(__s16)v : (__s64)(__u16)v;
	case 4:
		return signed_ ? (__s64)(__s32)v : (__s64)(__u32)v;
	}
	return (__s64)v;
}

__attribute__((noinline)) int th_reverse(__u32 i, __u32 n)
{
	struct pol_scratch *sc = scratch();
	int j;

	if (!sc || i >= TH_POL_MAX_ARGS)
		return 0;
	i = arg_idx(i);
	zero256(sc->rev[i]);
	for (j = 0; j < TH_POL_STR_MAX; j++) {
		if (j >= n)
			break;
		sc->rev[arg_idx(i)][j] = sc->fwd[arg_idx(i)][(n - 1 - j) & 255];
	}
	return 0;
}

/*
 * Decodes arg i of the hook from sc->raw (slots) or the tracepoint record at
 * cbase into sc->ev.args at off; keeps a NUL-padded copy of strings in
 * sc->fwd[i] (reversed in sc->rev[i] for Postfix). Returns the new offset,
 * or -1 when the area is full. Global: verified once.
 */
__attribute__((noinline)) int th_read_arg(__u32 i, __u32 off, __u64 cbase)
{
	struct pol_scratch *sc = scratch();
	struct th_pol_cfg *cfg = pol_config();
	struct th_pol_event *e;
	struct th_pol_arg *a;
	__u32 iflags = 0, n = 0;
	__u64 v = 0;
	long r;

	if (!sc || !cfg || i >= TH_POL_MAX_ARGS)
		return -1;
	e = &sc->ev;
	a = &cfg->args[arg_idx(i)];
	sc->vals[arg_idx(i)] = 0;
	sc->lens[arg_idx(i)] = 0;
	if (cfg->flags & TH_CF_TP_FIELDS) {
		if (a->kind == TH_PA_DATALOC) {
			__u32 loc = 0;

			bpf_probe_read_kernel(&loc, 4, (void *)(cbase + (a->off & 4095)));
			v = cbase + (loc & 0xffff);
		} else {
			__u32 sz = a->size;

			if (sz > 8)
				sz = 8;
			bpf_probe_read_kernel(&v, sz, (void *)(cbase + (a->off & 4095)));
		}
	} else {
		v = slot(sc->raw, a->src);
	}
	if (off > TH_POL_AREA - 8) {
		e->flags |= TH_EF_TRUNCATED;
		return -1;
	}
	if (a->kind == TH_PA_INT || a->kind == TH_PA_NONE) {
		__s64 sv = norm_int(v, a);

		sc->vals[arg_idx(i)] = sv;
		*(__s64 *)(e->args + area_off(off)) = sv;
		return off + 8;
	}
	if (off > TH_POL_AREA - 4 - TH_POL_BUF_MAX) {
		e->flags |= TH_EF_TRUNCATED;
		return -1;
	}
	if (a->kind == TH_PA_BUF) {
		__u64 size = a->max;
		__u32 si = a->sizeidx;

		if (si >= 1 && si <= 6)
			size = slot(sc->raw, si - 1);
		if (size > a->max) {
			size = a->max;
			iflags |= TH_IF_TRUNC;
		}
		if (size > TH_POL_BUF_MAX)
			size = TH_POL_BUF_MAX;
		n = size & (TH_POL_BUF_MAX * 2 - 1);
		if (n > TH_POL_BUF_MAX)
			n = TH_POL_BUF_MAX;
		if (a->flags & TH_AF_USER)
			r = bpf_probe_read_user(e->args + area_off(off + 4), n, (void *)v);
		else
			r = bpf_probe_read_kernel(e->args + area_off(off + 4), n, (void *)v);
		if (r < 0) {
			iflags |= TH_IF_ERROR;
			n = 0;
		}
		*(__u32 *)(e->args + area_off(off)) = n | iflags;
		return off + 4 + n;
	}
	zero256(sc->fwd[arg_idx(i)]);
	switch (a->kind) {
	case TH_PA_STR:
	case TH_PA_DATALOC:
		if (a->flags & TH_AF_USER)
			r = bpf_probe_read_user_str(sc->fwd[arg_idx(i)], 256, (void *)v);
		else
			r = bpf_probe_read_kernel_str(sc->fwd[arg_idx(i)], 256, (void *)v);
		if (r <= 0) {
			iflags |= TH_IF_ERROR;
			n = 0;
		} else {
			n = r - 1;
			if (n >= TH_POL_STR_MAX)
				iflags |= TH_IF_TRUNC;
		}
		break;
	case TH_PA_FD:
		sc->vals[arg_idx(i)] = (int)v;
		r = file_path(fd_file((long)(int)v), i);
		n = r & 0xffff;
		iflags |= r & ~0xffff;
		break;
	case TH_PA_FILE:
		r = file_path((struct file *)v, i);
		n = r & 0xffff;
		iflags |= r & ~0xffff;
		break;
	case TH_PA_PATH:
		if (!v) {
			iflags |= TH_IF_ERROR;
			break;
		}
		r = th_build_path((__u64)BPF_CORE_READ((struct path *)v, dentry), (__u64)BPF_CORE_READ((struct path *)v, mnt), i);
		n = r & 0xffff;
		iflags |= r & ~0xffff;
		break;
	case TH_PA_BPRM:
		r = file_path(v ? BPF_CORE_READ((struct linux_binprm *)v, file) : NULL, i);
		n = r & 0xffff;
		iflags |= r & ~0xffff;
		break;
	default:
		break;
	}
	n &= 255;
	if (n > TH_POL_STR_MAX)
		n = TH_POL_STR_MAX;
	sc->lens[arg_idx(i)] = n;
	bpf_probe_read_kernel(e->args + area_off(off + 4), n, sc->fwd[arg_idx(i)]);
	*(__u32 *)(e->args + area_off(off)) = n | iflags;
	if (a->flags & TH_AF_REV)
		th_reverse(i, n);
	return off + 4 + n;
}

static __always_inline void read_args(void *ctx, struct pol_scratch *sc, struct th_pol_cfg *cfg)
{
	__u64 cbase = 0;
	void *cp = ctx;
	int i, off = 0, r;

	/* the record's address as a plain number: fields are read at run-time offsets */
	if (cfg->flags & TH_CF_TP_FIELDS)
		bpf_probe_read_kernel(&cbase, sizeof(cbase), &cp);
	for (i = 0; i < TH_POL_MAX_ARGS; i++) {
		if (i >= cfg->nargs)
			break;
		r = th_read_arg(i, off, cbase);
		if (r < 0)
			break;
		off = r & (TH_POL_AREA * 2 - 1);
	}
	sc->ev.args_len = off & (TH_POL_AREA - 1);
}

/* A string (NUL padded, length n) against the values of matcher id. */
static __always_inline int str_lookup(struct pol_scratch *sc, const __u8 *s, __u32 n, __u32 id, void *map, int lpm)
{
	struct th_pol_strkey *k = &sc->key;

	if (n >= TH_POL_STR_LEN)
		n = TH_POL_STR_LEN - 1;
	k->id = id;
	bpf_probe_read_kernel(k->s, TH_POL_STR_LEN, s);
	if (lpm) {
		k->prefixlen = 32 + n * 8;
		return bpf_map_lookup_elem(map, k) != NULL;
	}
	if (n >= TH_POL_STR_LEN - 1)
		return 0; /* longer than any value */
	return bpf_map_lookup_elem(&th_pol_str_eq, &k->id) != NULL;
}

static __always_inline int int_match(const struct th_pol_match *m, __s64 v, int is_signed)
{
	int i, any = 0;

	for (i = 0; i < TH_POL_MAX_VALS; i++) {
		__s64 w = (__s64)m->vals[i];

		if (i >= m->nvals)
			break;
		switch (m->op) {
		case TH_OP_EQ:
		case TH_OP_NE:
			if (v == w)
				any = 1;
			break;
		case TH_OP_GT:
			return is_signed ? v > w : (__u64)v > (__u64)w;
		case TH_OP_LT:
			return is_signed ? v < w : (__u64)v < (__u64)w;
		case TH_OP_MASK:
			if ((__u64)v & (__u64)w)
				any = 1;
			break;
		}
	}
	return m->op == TH_OP_NE ? !any : any;
}

static __always_inline int arg_match(struct pol_scratch *sc, const struct th_pol_cfg *cfg, const struct th_pol_match *m, __s64 ret)
{
	__u32 a = m->arg;
	int hit;

	if (a == 5) /* return value */
		return int_match(m, ret, 1);
	if (a >= TH_POL_MAX_ARGS)
		return 0;
	switch (m->op) {
	case TH_OP_STR_EQ:
	case TH_OP_STR_NE:
		hit = str_lookup(sc, sc->fwd[a], sc->lens[a], m->id, &th_pol_str_eq, 0);
		return m->op == TH_OP_STR_EQ ? hit : !hit;
	case TH_OP_PREFIX:
	case TH_OP_NOTPREFIX:
		hit = str_lookup(sc, sc->fwd[a], sc->lens[a], m->id, &th_pol_str_pre, 1);
		return m->op == TH_OP_PREFIX ? hit : !hit;
	case TH_OP_POSTFIX:
	case TH_OP_NOTPOSTFIX:
		hit = str_lookup(sc, sc->rev[a], sc->lens[a], m->id, &th_pol_str_post, 1);
		return m->op == TH_OP_POSTFIX ? hit : !hit;
	}
	return int_match(m, sc->vals[a], cfg->args[a].flags & TH_AF_SIGNED);
}

static __always_inline int pids_match(const struct th_pol_sel *s, __u32 tgid, __u32 pid_bits, int si)
{
	int i, in = 0;

	for (i = 0; i < TH_POL_MAX_PIDS; i++) {
		if (i >= s->npids)
			break;
		if (s->pids[i] == tgid)
			in = 1;
	}
	if ((s->flags & TH_SF_PID_FOLLOW) && (pid_bits & (1u << si)))
		in = 1;
	return (s->flags & TH_SF_PID_NOTIN) ? !in : in;
}

/* Bitmask of the selectors whose enter-side parts match. Global: verified once. */
__attribute__((noinline)) __u32 th_eval_enter(__u32 tgid)
{
	struct pol_scratch *sc = scratch();
	struct th_pol_cfg *cfg = pol_config();
	struct th_pol_task *t;
	__u32 bin_bits, pid_bits, cand = 0;
	int s, m;

	if (!sc || !cfg)
		return 0;
	t = bpf_map_lookup_elem(&th_pol_tasks, &tgid);
	bin_bits = t ? t->bin_bits : cfg->bin_default;
	pid_bits = t ? t->pid_bits : 0;

	for (s = 0; s < TH_POL_MAX_SEL; s++) {
		const struct th_pol_sel *sel = &cfg->sel[s];
		int ok = 1;

		if (s >= cfg->nsel)
			break;
		if ((sel->flags & TH_SF_BIN) && !(bin_bits & (1u << s)))
			continue;
		if ((sel->flags & TH_SF_PIDS) && !pids_match(sel, tgid, pid_bits, s))
			continue;
		for (m = 0; m < TH_POL_MAX_MATCH; m++) {
			if (m >= sel->nmatch)
				break;
			if (!arg_match(sc, cfg, &sel->m[m], 0)) {
				ok = 0;
				break;
			}
		}
		if (ok)
			cand |= 1u << s;
	}
	return cand;
}

static __always_inline __u64 args_hash(const struct th_pol_event *e)
{
	__u64 h = 14695981039346656037ULL;
	__u32 words = (e->args_len + 7) / 8;
	int i;

	for (i = 0; i < TH_POL_AREA / 8; i++) {
		if (i >= words)
			break;
		h = (h ^ ((const __u64 *)e->args)[i & (TH_POL_AREA / 8 - 1)]) * 1099511628211ULL;
	}
	return h;
}

/* Returns 1 when the event may be posted (not rate limited). */
static __always_inline int rate_ok(const struct th_pol_sel *sel, struct th_pol_event *e, __u32 si)
{
	struct th_pol_ratekey k = {};
	__u64 now = bpf_ktime_get_ns(), *last;

	if (!sel->rate_ms)
		return 1;
	k.sel = si;
	k.scope = sel->rate_scope == TH_RS_GLOBAL ? 0 : sel->rate_scope == TH_RS_PROCESS ? e->pid : e->tid;
	k.hash = args_hash(e);
	last = bpf_map_lookup_elem(&th_pol_rate, &k);
	if (last && now - *last < (__u64)sel->rate_ms * 1000000ULL)
		return 0;
	bpf_map_update_elem(&th_pol_rate, &k, &now, BPF_ANY);
	return 1;
}

static __always_inline void emit(struct th_pol_event *e)
{
	__u32 len = e->args_len & (TH_POL_AREA - 1);

	e->hdr.type = TH_REC_POLICY;
	e->hdr.version = TH_LAYOUT_VERSION;
	e->hdr.pad0 = 0;
	e->hdr.size = TH_POL_EVENT_HDR + len;
	if (bpf_ringbuf_output(&th_pol_events, e, TH_POL_EVENT_HDR + len, th_rb_flags(&th_pol_events)))
		CNT(dropped);
}

/*
 * Runs selector si's actions. Returns the errno to override with (kprobe /
 * LSM callers apply it), 0 for none.
 */
static __always_inline int do_actions(struct th_pol_event *e, const struct th_pol_cfg *cfg, __u32 si, int kind)
{
	const struct th_pol_sel *sel;
	int monitor = cfg->flags & TH_CF_MONITOR, override = 0;
	__u32 acts;

	if (si >= TH_POL_MAX_SEL)
		return 0;
	sel = &cfg->sel[si];
	acts = sel->actions;
	e->sel = si;
	e->actions = acts;
	e->sig = 0;
	e->err = 0;
	if (monitor)
		e->flags |= TH_EF_MONITOR;
	if (acts & (TH_ACT_SIGKILL | TH_ACT_SIGNAL)) {
		__u32 sig = (acts & TH_ACT_SIGKILL) ? 9 : sel->sig;

		e->sig = sig;
		e->flags |= (acts & TH_ACT_SIGKILL) ? TH_EF_KILLED : TH_EF_SIGNALED;
		if (monitor) {
			CNT(monitor_signal);
		} else {
			bpf_send_signal(sig);
			CNT(signal);
		}
	}
	if (acts & TH_ACT_OVERRIDE) {
		e->err = sel->err;
		if (kind != K_TP) {
			e->flags |= TH_EF_OVERRIDE;
			if (monitor) {
				CNT(monitor_override);
			} else {
				override = sel->err;
				CNT(override);
			}
		}
	}
	if (acts & TH_ACT_NOPOST) {
		CNT(nopost);
		return override;
	}
	if (!rate_ok(sel, e, si)) {
		CNT(ratelimited);
		return override;
	}
	emit(e);
	CNT(post);
	return override;
}

/* Enter side. Returns the errno to override with (0 = none). */
static __always_inline int on_enter(void *ctx, const __u64 *raw, int kind)
{
	struct pol_scratch *sc;
	struct th_pol_cfg *cfg;
	struct th_pol_event *e;
	__u32 zero = 0, tgid, cand;
	__u64 id = bpf_get_current_pid_tgid();
	int s;

	tgid = id >> 32;
	if (tgid == agent_tgid)
		return 0;
	cfg = bpf_map_lookup_elem(&th_pol_cfg, &zero);
	if (!cfg || !(cfg->flags & TH_CF_ENABLED))
		return 0;
	sc = bpf_map_lookup_elem(&th_pol_scratch, &zero);
	if (!sc)
		return 0;
	e = &sc->ev;
	e->flags = 0;
	e->ret = 0;
	e->pid = tgid;
	e->tid = (__u32)id;
	e->policy_id = cfg->policy_id;
	e->hook_id = cfg->hook_id;
	e->hdr.ktime = bpf_ktime_get_boot_ns();
	e->proc_ktime = th_proc_ktime(tgid);
	sc->raw[0] = raw[0];
	sc->raw[1] = raw[1];
	sc->raw[2] = raw[2];
	sc->raw[3] = raw[3];
	sc->raw[4] = raw[4];
	sc->raw[5] = raw[5];
	read_args(ctx, sc, cfg);
	cand = th_eval_enter(tgid);
	if (!cand)
		return 0;
	e->cand = cand;
	if (cfg->flags & TH_CF_RETURN) {
		__u32 tid = (__u32)id;

		if (bpf_map_update_elem(&th_pol_stash, &tid, e, BPF_ANY))
			CNT(stash_full);
		return 0;
	}
	for (s = 0; s < TH_POL_MAX_SEL; s++) {
		if (cand & (1u << s))
			return do_actions(e, cfg, s, kind);
	}
	return 0;
}

static __always_inline void on_exit(__s64 ret)
{
	struct pol_scratch *sc;
	struct th_pol_cfg *cfg;
	struct th_pol_event *p, *e;
	__u32 zero = 0, tid = (__u32)bpf_get_current_pid_tgid();
	int s, m;

	cfg = bpf_map_lookup_elem(&th_pol_cfg, &zero);
	if (!cfg || !(cfg->flags & TH_CF_RETURN))
		return;
	p = bpf_map_lookup_elem(&th_pol_stash, &tid);
	if (!p)
		return;
	sc = bpf_map_lookup_elem(&th_pol_scratch, &zero);
	if (!sc) {
		bpf_map_delete_elem(&th_pol_stash, &tid);
		return;
	}
	e = &sc->ev;
	bpf_probe_read_kernel(e, sizeof(*e), p);
	bpf_map_delete_elem(&th_pol_stash, &tid);
	e->ret = ret;
	e->flags |= TH_EF_RET;
	for (s = 0; s < TH_POL_MAX_SEL; s++) {
		const struct th_pol_sel *sel = &cfg->sel[s];
		int ok = 1;

		if (!(e->cand & (1u << s)))
			continue;
		for (m = 0; m < TH_POL_MAX_RMATCH; m++) {
			if (m >= sel->nret)
				break;
			if (!int_match(&sel->r[m], ret, 1)) {
				ok = 0;
				break;
			}
		}
		if (ok) {
			do_actions(e, cfg, s, K_TP);
			return;
		}
	}
}

/* --- tracepoints ---------------------------------------------------------- */

/* syscalls/sys_enter_X: {common 8, int nr, pad, unsigned long args[6]} */
SEC("tracepoint")
int pol_tp_enter(void *ctx)
{
	__u64 raw[6] = {};
	struct th_pol_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&th_pol_cfg, &zero);
	if (!cfg)
		return 0;
	if (!(cfg->flags & TH_CF_TP_FIELDS))
		bpf_probe_read_kernel(raw, sizeof(raw), ctx + 16);
	on_enter(ctx, raw, K_TP);
	return 0;
}

/* syscalls/sys_exit_X: {common 8, int nr, pad, long ret} */
SEC("tracepoint")
int pol_tp_exit(void *ctx)
{
	__s64 ret = 0;

	bpf_probe_read_kernel(&ret, sizeof(ret), ctx + 16);
	on_exit(ret);
	return 0;
}

/* --- kprobes -------------------------------------------------------------- */

/* x86_64 syscall wrappers: the real args are in the inner pt_regs */
static __always_inline int kp_sys_enter(struct pt_regs *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
	__u64 raw[6];

	raw[0] = BPF_CORE_READ(regs, di);
	raw[1] = BPF_CORE_READ(regs, si);
	raw[2] = BPF_CORE_READ(regs, dx);
	raw[3] = BPF_CORE_READ(regs, r10);
	raw[4] = BPF_CORE_READ(regs, r8);
	raw[5] = BPF_CORE_READ(regs, r9);
	return on_enter(ctx, raw, K_KPROBE);
}

static __always_inline int kp_enter(struct pt_regs *ctx)
{
	__u64 raw[6];

	raw[0] = PT_REGS_PARM1(ctx);
	raw[1] = PT_REGS_PARM2(ctx);
	raw[2] = PT_REGS_PARM3(ctx);
	raw[3] = PT_REGS_PARM4(ctx);
	raw[4] = PT_REGS_PARM5(ctx);
	raw[5] = ctx->r9;
	return on_enter(ctx, raw, K_KPROBE);
}

/* Without bpf_override_return (kernels without CONFIG_BPF_KPROBE_OVERRIDE refuse the helper). */
SEC("kprobe")
int pol_kp_sys_enter(struct pt_regs *ctx)
{
	kp_sys_enter(ctx);
	return 0;
}

SEC("kprobe")
int pol_kp_enter(struct pt_regs *ctx)
{
	kp_enter(ctx);
	return 0;
}

/* With Override: the function must allow error injection. */
SEC("kprobe")
int pol_kp_sys_enter_ovr(struct pt_regs *ctx)
{
	int err = kp_sys_enter(ctx);

	if (err)
		bpf_override_return(ctx, (unsigned long)(long)-err);
	return 0;
}

SEC("kprobe")
int pol_kp_enter_ovr(struct pt_regs *ctx)
{
	int err = kp_enter(ctx);

	if (err)
		bpf_override_return(ctx, (unsigned long)(long)-err);
	return 0;
}

SEC("kretprobe")
int pol_kp_exit(struct pt_regs *ctx)
{
	on_exit((__s64)PT_REGS_RC(ctx));
	return 0;
}

/* --- BPF-LSM: one program per supported hook (the arity is fixed per hook) - */

/*
 * Returns are 64-bit on purpose: 6.12 checks that R0 is in [-4095, 0] as a
 * 64-bit value, and a 32-bit negation zero-extends.
 */
static __always_inline long lsm_common(void *ctx, __u64 a0, __u64 a1, __u64 a2, __u64 a3, long prev)
{
	__u64 raw[6] = { a0, a1, a2, a3, 0, 0 };
	long err, r;

	/* an earlier program already denied: keep denying */
	if (prev)
		return -EPERM_;
	err = on_enter(ctx, raw, K_LSM);
	if (err <= 0 || err > 4095)
		return 0;
	/* 0 - err as a subtraction: the verifier keeps the range of SUB, not of NEG */
	r = 0;
	asm volatile("%0 -= %1" : "+r"(r) : "r"(err));
	return r;
}

/* ctx[]: the hook's args, then the return value of the previous program */
SEC("lsm/file_open")
long pol_lsm_file_open(unsigned long long *ctx)
{
	return lsm_common(ctx, ctx[0], 0, 0, 0, (int)ctx[1]);
}

SEC("lsm/bprm_check_security")
long pol_lsm_bprm_check_security(unsigned long long *ctx)
{
	return lsm_common(ctx, ctx[0], 0, 0, 0, (int)ctx[1]);
}

SEC("lsm/file_permission")
long pol_lsm_file_permission(unsigned long long *ctx)
{
	return lsm_common(ctx, ctx[0], ctx[1], 0, 0, (int)ctx[2]);
}

SEC("lsm/path_unlink")
long pol_lsm_path_unlink(unsigned long long *ctx)
{
	return lsm_common(ctx, ctx[0], ctx[1], 0, 0, (int)ctx[3 - 1]);
}

/* --- process state for matchBinaries / matchPIDs followForks --------------- */

SEC("raw_tp/sched_process_exec")
int pol_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	struct linux_binprm *bprm = (void *)ctx->args[2];
	struct th_pol_task nt = {}, *old;
	struct pol_scratch *sc;
	struct th_pol_cfg *cfg;
	__u32 zero = 0, tgid, n = 0, bits = 0;
	long r;
	int s, j;

	cfg = bpf_map_lookup_elem(&th_pol_cfg, &zero);
	sc = bpf_map_lookup_elem(&th_pol_scratch, &zero);
	if (!cfg || !sc)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	zero256(sc->fwd[0]);
	r = bpf_probe_read_kernel_str(sc->fwd[0], 256, BPF_CORE_READ(bprm, filename));
	if (r > 0)
		n = (r - 1) & 255;
	if (cfg->flags & TH_CF_BIN_REV) {
		zero256(sc->rev[0]);
		for (j = 0; j < 255; j++) {
			if (j >= n)
				break;
			sc->rev[0][j] = sc->fwd[0][(n - 1 - j) & 255];
		}
	}
	for (s = 0; s < TH_POL_MAX_SEL; s++) {
		const struct th_pol_sel *sel = &cfg->sel[s];
		int hit = 0;

		if (!(cfg->bin_mask & (1u << s)))
			continue;
		switch (sel->bin_op) {
		case TH_BIN_IN:
		case TH_BIN_NOTIN:
			hit = str_lookup(sc, sc->fwd[0], n, TH_POL_BIN_ID + s, &th_pol_str_eq, 0);
			break;
		case TH_BIN_PREFIX:
		case TH_BIN_NOTPREFIX:
			hit = str_lookup(sc, sc->fwd[0], n, TH_POL_BIN_ID + s, &th_pol_str_pre, 1);
			break;
		case TH_BIN_POSTFIX:
		case TH_BIN_NOTPOSTFIX:
			hit = str_lookup(sc, sc->rev[0], n, TH_POL_BIN_ID + s, &th_pol_str_post, 1);
			break;
		}
		if (sel->bin_op == TH_BIN_NOTIN || sel->bin_op == TH_BIN_NOTPREFIX || sel->bin_op == TH_BIN_NOTPOSTFIX)
			hit = !hit;
		if (hit)
			bits |= 1u << s;
	}
	old = bpf_map_lookup_elem(&th_pol_tasks, &tgid);
	if (old) {
		/* followChildren: descendants of a matching binary keep matching */
		bits |= old->bin_bits & cfg->follow_mask;
		nt.pid_bits = old->pid_bits;
	}
	nt.bin_bits = bits;
	if (bpf_map_update_elem(&th_pol_tasks, &tgid, &nt, BPF_ANY))
		CNT(task_full);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int pol_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (void *)ctx->args[0];
	struct task_struct *child = (void *)ctx->args[1];
	struct th_pol_task nt = {}, *pt;
	struct th_pol_cfg *cfg;
	__u32 zero = 0, ptgid, pid, tgid;
	int s, i;

	pid = BPF_CORE_READ(child, pid);
	tgid = BPF_CORE_READ(child, tgid);
	if (pid != tgid)
		return 0;
	cfg = bpf_map_lookup_elem(&th_pol_cfg, &zero);
	if (!cfg)
		return 0;
	ptgid = BPF_CORE_READ(parent, tgid);
	pt = bpf_map_lookup_elem(&th_pol_tasks, &ptgid);
	if (pt) {
		nt = *pt;
	} else {
		nt.bin_bits = cfg->bin_default;
	}
	for (s = 0; s < TH_POL_MAX_SEL; s++) {
		const struct th_pol_sel *sel = &cfg->sel[s];

		if (s >= cfg->nsel)
			break;
		if (!(sel->flags & TH_SF_PID_FOLLOW))
			continue;
		for (i = 0; i < TH_POL_MAX_PIDS; i++) {
			if (i >= sel->npids)
				break;
			if (sel->pids[i] == ptgid)
				nt.pid_bits |= 1u << s;
		}
	}
	if (!pt && !nt.pid_bits && nt.bin_bits == cfg->bin_default)
		return 0;
	if (bpf_map_update_elem(&th_pol_tasks, &tgid, &nt, BPF_ANY))
		CNT(task_full);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int pol_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (void *)ctx->args[0];
	__u32 tgid;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&th_pol_tasks, &tgid);
	return 0;
}
