/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * th_policy.h — configuration, map keys and records of the generic
 * TracingPolicy programs (bpf/policy.bpf.c), shared with user space
 * (src/policy/engine/). One object instance per policy hook: th_pol_cfg
 * (array, key 0) holds that hook's args and selectors; string values live
 * in th_pol_str_eq (hash) and th_pol_str_pre / th_pol_str_post (LPM tries
 * over the bytes, the latter over the reversed bytes), keyed by matcher id.
 */
/* layout:output src/policy/engine/layout.gen.ts */
/* layout:import tetrahub_events.h */
#ifndef TH_POLICY_H
#define TH_POLICY_H

#include "tetrahub_events.h"

/* layout:begin */

/* th_hdr.type of a policy record (file 32-39, syscall 40-47). */
#define TH_REC_POLICY 48

/* Limits (Tetragon's or higher). */
#define TH_POL_MAX_SEL 5
#define TH_POL_MAX_ARGS 5
#define TH_POL_MAX_MATCH 5
#define TH_POL_MAX_RMATCH 2
#define TH_POL_MAX_VALS 4
#define TH_POL_MAX_PIDS 4
/* String match keys: bytes compared (NUL padded); LPM data must stay <= 256. */
#define TH_POL_STR_LEN 248
/* Strings and paths in records: at most this many bytes. */
#define TH_POL_STR_MAX 255
/* char_buf bytes in records. */
#define TH_POL_BUF_MAX 1024
/* Record args area (power of 2) and its backing size (area + largest item). */
#define TH_POL_AREA 2048
#define TH_POL_AREA_BUF 3080
/* Path components walked. */
#define TH_POL_PATH_DEPTH 32
/* Matcher ids of matchBinaries: TH_POL_BIN_ID + selector. */
#define TH_POL_BIN_ID 100

/* th_pol_cfg.flags */
#define TH_CF_ENABLED 0x1
#define TH_CF_MONITOR 0x2
/* stash at enter, finish at exit (return value wanted or matchReturnArgs) */
#define TH_CF_RETURN 0x4
/* tracepoint fields: raw values read at args[i].off (else syscall slots) */
#define TH_CF_TP_FIELDS 0x8
/* some matchBinaries selector uses Postfix/NotPostfix */
#define TH_CF_BIN_REV 0x10

/* th_pol_arg.kind */
#define TH_PA_NONE 0
#define TH_PA_INT 1
#define TH_PA_STR 2
#define TH_PA_BUF 3
#define TH_PA_FD 4
#define TH_PA_FILE 5
#define TH_PA_PATH 6
#define TH_PA_BPRM 7
#define TH_PA_DATALOC 8

/* th_pol_arg.flags */
#define TH_AF_USER 0x1
#define TH_AF_SIGNED 0x2
/* keep a reversed copy for Postfix matchers */
#define TH_AF_REV 0x4

/* th_pol_match.op */
#define TH_OP_EQ 1
#define TH_OP_NE 2
#define TH_OP_GT 3
#define TH_OP_LT 4
#define TH_OP_MASK 5
#define TH_OP_STR_EQ 6
#define TH_OP_STR_NE 7
#define TH_OP_PREFIX 8
#define TH_OP_NOTPREFIX 9
#define TH_OP_POSTFIX 10
#define TH_OP_NOTPOSTFIX 11

/* th_pol_sel.flags */
#define TH_SF_BIN 0x1
#define TH_SF_PIDS 0x2
#define TH_SF_PID_NOTIN 0x4
#define TH_SF_PID_FOLLOW 0x8
#define TH_SF_RETURN 0x10

/* th_pol_sel.bin_op */
#define TH_BIN_IN 1
#define TH_BIN_NOTIN 2
#define TH_BIN_PREFIX 3
#define TH_BIN_NOTPREFIX 4
#define TH_BIN_POSTFIX 5
#define TH_BIN_NOTPOSTFIX 6

/* th_pol_sel.actions */
#define TH_ACT_POST 0x1
#define TH_ACT_NOPOST 0x2
#define TH_ACT_SIGKILL 0x4
#define TH_ACT_SIGNAL 0x8
#define TH_ACT_OVERRIDE 0x10

/* th_pol_sel.rate_scope */
#define TH_RS_THREAD 0
#define TH_RS_PROCESS 1
#define TH_RS_GLOBAL 2

/* th_pol_event.flags */
#define TH_EF_RET 0x1
#define TH_EF_MONITOR 0x2
#define TH_EF_KILLED 0x4
#define TH_EF_SIGNALED 0x8
#define TH_EF_OVERRIDE 0x10
#define TH_EF_TRUNCATED 0x20

/* String items in the args area: u32 header = length | these bits. */
#define TH_IF_TRUNC 0x10000
#define TH_IF_ERROR 0x20000

/* Default sizes; user space may override. */
#define TH_POL_EVENTS_DEFAULT_BYTES 262144
#define TH_POL_STASH_ENTRIES 1024
#define TH_POL_TASK_ENTRIES 8192
#define TH_POL_STR_ENTRIES 256
#define TH_POL_RATE_ENTRIES 4096

/* One argument of the hook: where its raw value comes from and how to read it. */
struct th_pol_arg {
	__u8 kind;
	__u8 src;
	__u8 size;
	__u8 sizeidx;
	__u8 flags;
	__u8 pad0;
	__u16 off;
	__u32 max;
	__u32 pad1;
};

/* One matchArgs / matchReturnArgs filter (arg = position in the hook's args; 5 = return value). */
struct th_pol_match {
	__u8 op;
	__u8 arg;
	__u8 nvals;
	__u8 pad0;
	__u32 id;
	__u64 vals[TH_POL_MAX_VALS];
};

struct th_pol_sel {
	__u32 flags;
	__u8 nmatch;
	__u8 nret;
	__u8 bin_op;
	__u8 npids;
	__u32 pids[TH_POL_MAX_PIDS];
	__u32 actions;
	__u32 sig;
	__s32 err;
	__u32 rate_ms;
	__u32 rate_scope;
	__u32 pad0;
	struct th_pol_match m[TH_POL_MAX_MATCH];
	struct th_pol_match r[TH_POL_MAX_RMATCH];
};

/* Value of th_pol_cfg (array, key 0). */
struct th_pol_cfg {
	__u32 flags;
	__u32 policy_id;
	__u32 hook_id;
	__u8 nargs;
	__u8 nsel;
	__u8 pad0;
	__u8 pad1;
	/* selectors with matchBinaries; those with followChildren */
	__u32 bin_mask;
	__u32 follow_mask;
	/* bin bits of a process never seen at exec (NotIn & co. match) */
	__u32 bin_default;
	__u32 pad2;
	struct th_pol_arg args[TH_POL_MAX_ARGS];
	struct th_pol_sel sel[TH_POL_MAX_SEL];
};

/* Per thread group (th_pol_tasks). */
struct th_pol_task {
	__u32 bin_bits;
	__u32 pid_bits;
};

/* Key of th_pol_str_pre / th_pol_str_post (LPM: prefixlen counts id + string bits); th_pol_str_eq keys on id + s. */
struct th_pol_strkey {
	__u32 prefixlen;
	__u32 id;
	__u8 s[TH_POL_STR_LEN];
};

struct th_pol_ratekey {
	__u32 sel;
	__u32 scope;
	__u64 hash;
};

/* Value of the per-CPU array th_pol_counters (key 0); user space sums CPUs. */
struct th_pol_counters {
	__u64 post;
	__u64 signal;
	__u64 monitor_signal;
	__u64 override;
	__u64 monitor_override;
	__u64 nopost;
	__u64 dropped;
	__u64 stash_full;
	__u64 ratelimited;
	__u64 task_full;
};

/*
 * TH_REC_POLICY: one match. Args area: per hook arg in order, integers as
 * 8 bytes, string-like items as a u32 header (length | TH_IF_*) then the
 * bytes (no NUL, no padding). Record size = TH_POL_EVENT_HDR + args_len.
 */
#define TH_POL_EVENT_HDR 72
struct th_pol_event {
	struct th_hdr hdr;
	__u64 proc_ktime;
	__s64 ret;
	__u32 pid;
	__u32 tid;
	__u32 policy_id;
	__u32 hook_id;
	__u32 flags;
	__u32 actions;
	__u32 sig;
	__s32 err;
	__u16 sel;
	__u16 args_len;
	__u32 cand;
	__u8 args[TH_POL_AREA_BUF];
};

/* layout:end */

TH_STATIC_ASSERT(sizeof(struct th_pol_event) == TH_POL_EVENT_HDR + TH_POL_AREA_BUF, "th_pol_event size");
TH_STATIC_ASSERT(sizeof(struct th_pol_strkey) - 4 <= 256, "LPM data size");

#endif /* TH_POLICY_H */
