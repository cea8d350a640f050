/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * tetrahub_events.h — THE definition of the records the BPF sensors write to
 * their ring buffers and of the values of the maps user space reads.
 *
 * Shared by BPF (after vmlinux.h) and by user space C (bench/c-consumer).
 * The TypeScript decoder never keeps offsets by hand: scripts/gen-layouts.js
 * parses the part between the layout:begin / layout:end markers and writes
 * src/sensors/process/layout.gen.ts; src/sensors/process/layout.test.ts fails
 * when that file is stale or disagrees with the BTF of the compiled object.
 *
 * Rules for the exported part (the generator enforces them):
 *   - only fixed-width types (__u8/__u16/__u32/__u64/__s8.../__s64), nested
 *     exported structs and one-dimensional arrays of those;
 *   - one member per line; no bitfields; no implicit padding: every hole is an
 *     explicit padN member and every struct size is a multiple of 8;
 *   - #define NAME <integer literal> only.
 *
 * All multi-byte fields are in host byte order (little endian on x86_64/arm64).
 */
#ifndef TETRAHUB_EVENTS_H
#define TETRAHUB_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* layout:begin */

/* Bumped on any incompatible change of the records below. */
#define TH_LAYOUT_VERSION 1

/* th_hdr.type */
#define TH_REC_EXEC 1
#define TH_REC_CLONE 2
#define TH_REC_EXIT 3
/* Length of the per-type counter arrays in th_stats (indexed by TH_REC_*). */
#define TH_REC_MAX 8

/* Process flags: same bits as Tetragon (bpf/lib/process.h, main). */
#define TH_FLAG_EXECVE 0x1
#define TH_FLAG_PROCFS 0x4
#define TH_FLAG_TRUNC_ARGS 0x10
#define TH_FLAG_MISS 0x40
#define TH_FLAG_ERROR_FILENAME 0x100
#define TH_FLAG_ERROR_ARGS 0x200
#define TH_FLAG_NOCWD 0x800
#define TH_FLAG_ROOTCWD 0x1000
#define TH_FLAG_ERROR_CWD 0x2000
#define TH_FLAG_CLONE 0x4000
#define TH_FLAG_ERROR_CGROUP_NAME 0x10000
#define TH_FLAG_ERROR_CGROUP_ID 0x200000
#define TH_FLAG_ERROR_PATH_RESOLUTION_CWD 0x400000

/* Bounds of the variable tail of an EXEC record (bytes, without NULs). */
#define TH_FILENAME_MAX 1023
#define TH_ARGS_MAX 4096
#define TH_CWD_MAX 2048
#define TH_CWD_COMPONENTS_MAX 64
#define TH_CGROUP_NAME_MAX 127
/* Largest EXEC record: sizeof(th_exec) + the four maxima above. */
#define TH_EXEC_RECORD_MAX 7374

/* Default sizes; user space may override (bpf_map__set_max_entries). */
#define TH_PROCS_DEFAULT_ENTRIES 32768
#define TH_EVENTS_DEFAULT_BYTES 8388608

/*
 * Common header of every record. size = bytes of the whole record, header
 * included (the ring may hand over a few more bytes: trust size, not the ring
 * length). ktime = ns since boot (bpf_ktime_get_boot_ns): the time of the
 * event itself (exec, fork or exit).
 */
struct th_hdr {
	__u8 type;
	__u8 version;
	__u16 pad0;
	__u32 size;
	__u64 ktime;
};

/*
 * TH_REC_EXEC, emitted by raw_tp/sched_process_exec after a successful execve.
 * hdr.ktime is the new image's ktime (the exec_id ktime).
 * (ppid, parent_ktime) is the parent image: the previous image of the same
 * pid (its exec or clone ktime), or on a map miss the real parent's current
 * image (parent_ktime 0 when unknown) with TH_FLAG_MISS.
 * Followed by a variable tail, in this order, lengths in the *_len fields:
 *   filename     bprm->filename, no NUL
 *   args         raw argv bytes from the new mm (argv[0] included), each
 *                argument NUL terminated; the last one has no NUL when
 *                TH_FLAG_TRUNC_ARGS is set
 *   cwd          absolute path, no NUL ("/" with TH_FLAG_ROOTCWD)
 *   cgroup_name  kernfs name (leaf directory) of the task's cgroup, e.g.
 *                "docker-<id>.scope", "" for the root cgroup, no NUL
 * cgroup_id / cgroup_name name the cgroup-v2 cgroup (cgroup_id from
 * bpf_get_current_cgroup_id), or with process.bpf.c's cgroup_subsys_idx set,
 * the cgroup of that v1 subsystem (cgroup_id = its kernfs node id = the inode
 * of its directory).
 */
struct th_exec {
	struct th_hdr hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 flags;
	__u64 parent_ktime;
	__u64 cgroup_id;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 auid;
	__u16 filename_len;
	__u16 args_len;
	__u16 cwd_len;
	__u16 cgroup_name_len;
	__u32 pad1;
};

/*
 * TH_REC_CLONE, emitted by raw_tp/sched_process_fork for a new thread group
 * (not for new threads). hdr.ktime is the child's (clone image's) ktime;
 * (ppid, parent_ktime) the forking process's current image. flags has
 * TH_FLAG_CLONE (| TH_FLAG_MISS when the parent was not in the map).
 */
struct th_clone {
	struct th_hdr hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 flags;
	__u64 parent_ktime;
};

/*
 * TH_REC_EXIT, emitted by raw_tp/sched_process_exit once per thread group
 * (last thread) for processes that are in tetrahub_procs. hdr.ktime is the
 * exit time, proc_ktime the exiting image's ktime. code is the raw wait
 * status as the parent's wait() would see it: exit status in bits 8..15,
 * terminating signal in bits 0..6, core dump 0x80.
 */
struct th_exit {
	struct th_hdr hdr;
	__u32 pid;
	__u32 tid;
	__u64 proc_ktime;
	__u32 code;
	__u32 pad1;
};

/*
 * Value of the tetrahub_procs hash map (key: __u32 tgid), the equivalent of
 * Tetragon's execve_map. User space seeds it from /proc at start-up with
 * flags TH_FLAG_PROCFS and ktime from /proc/<pid>/stat starttime.
 */
struct th_proc {
	__u64 ktime;
	__u64 parent_ktime;
	__u32 parent_pid;
	__u32 flags;
};

/*
 * Value of the per-CPU array tetrahub_stats (one entry, key 0); user space
 * sums it over the possible CPUs. Indexed by TH_REC_*.
 *   emitted[t]         records of type t written to the ring
 *   dropped[t]         records of type t lost: ring reservation/output failed
 *   procs_update_err   tetrahub_procs updates that failed (map full)
 *   exit_unknown       thread-group exits of pids not in tetrahub_procs
 */
struct th_stats {
	__u64 emitted[TH_REC_MAX];
	__u64 dropped[TH_REC_MAX];
	__u64 procs_update_err;
	__u64 exit_unknown;
};

/* layout:end */

#ifdef __cplusplus
#define TH_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define TH_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

TH_STATIC_ASSERT(sizeof(struct th_hdr) == 16, "th_hdr size");
TH_STATIC_ASSERT(sizeof(struct th_exec) == 80, "th_exec size");
TH_STATIC_ASSERT(sizeof(struct th_clone) == 40, "th_clone size");
TH_STATIC_ASSERT(sizeof(struct th_exit) == 40, "th_exit size");
TH_STATIC_ASSERT(sizeof(struct th_proc) == 24, "th_proc size");
TH_STATIC_ASSERT(TH_EXEC_RECORD_MAX == sizeof(struct th_exec) + TH_FILENAME_MAX +
			TH_ARGS_MAX + TH_CWD_MAX + TH_CGROUP_NAME_MAX,
		 "TH_EXEC_RECORD_MAX");

#endif /* TETRAHUB_EVENTS_H */
