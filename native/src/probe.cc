// probeFeatures(): what this kernel lets the agent do, found by trying it.
// Attach probes load a two-instruction program of each kind and attach it
// for a moment; nothing here depends on compiled BPF objects.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <napi.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace tetrahub {

namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Outcome of one probe: ok, or why not.
struct Result {
  bool ok = false;
  std::string reason;
  static Result Yes() { return {true, ""}; }
  static Result No(std::string why) { return {false, std::move(why)}; }
};

constexpr bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return {BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm};
}
constexpr bpf_insn Mov64Reg(uint8_t dst, uint8_t src) {
  return {BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0};
}
constexpr bpf_insn Add64Imm(uint8_t dst, int32_t imm) {
  return {BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm};
}
constexpr bpf_insn LdxDw(uint8_t dst, uint8_t src, int16_t off) {
  return {BPF_LDX | BPF_MEM | BPF_DW, dst, src, off, 0};
}
constexpr bpf_insn StDw(uint8_t dst, int16_t off, int32_t imm) {
  return {BPF_ST | BPF_MEM | BPF_DW, dst, 0, off, imm};
}
constexpr bpf_insn Call(int32_t helper) { return {BPF_JMP | BPF_CALL, 0, 0, 0, helper}; }
constexpr bpf_insn Exit() { return {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}; }

const bpf_insn kReturn0[] = {Mov64Imm(BPF_REG_0, 0), Exit()};
const bpf_insn kReturn1[] = {Mov64Imm(BPF_REG_0, 1), Exit()};

// fentry body: bpf_d_path(first argument, 16-byte zeroed stack buffer, 16).
const bpf_insn kDPath[] = {
    LdxDw(BPF_REG_1, BPF_REG_1, 0),
    StDw(BPF_REG_10, -16, 0),
    StDw(BPF_REG_10, -8, 0),
    Mov64Reg(BPF_REG_2, BPF_REG_10),
    Add64Imm(BPF_REG_2, -16),
    Mov64Imm(BPF_REG_3, 16),
    Call(BPF_FUNC_d_path),
    Mov64Imm(BPF_REG_0, 0),
    Exit(),
};

struct ProgSpec {
  bpf_prog_type type;
  const bpf_insn* insns;
  size_t count;
  bpf_attach_type expected = static_cast<bpf_attach_type>(0);
  uint32_t btfId = 0;
};

template <size_t N>
ProgSpec Spec(bpf_prog_type type, const bpf_insn (&insns)[N]) {
  return {type, insns, N};
}

// Last non-empty line of a verifier log that is not its statistics.
std::string LogReason(const char* log) {
  std::istringstream in(log);
  std::string line, best;
  while (std::getline(in, line)) {
    if (line.empty() || line.rfind("processed ", 0) == 0 || line.rfind("verification time", 0) == 0) continue;
    best = line;
  }
  return best;
}

// Loads spec; on failure fills *why with "load refused: <errno text>[: <log>]".
int Load(const ProgSpec& s, std::string* why) {
  struct bpf_prog_load_opts o;
  InitOpts(o);
  o.expected_attach_type = s.expected;
  o.attach_btf_id = s.btfId;
  int fd = bpf_prog_load(s.type, "th_probe", "GPL", s.insns, s.count, &o);
  if (fd >= 0) return fd;
  int err = errno;
  // Load again with a log only to explain the failure.
  char log[4096] = {0};
  o.log_level = 1;
  o.log_buf = log;
  o.log_size = sizeof log;
  int again = bpf_prog_load(s.type, "th_probe", "GPL", s.insns, s.count, &o);
  if (again >= 0) close(again);
  std::string detail = LogReason(log);
  *why = "load refused: " + ErrnoText(err) + (detail.empty() ? "" : ": " + detail);
  return -1;
}

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream f(path);
  *ok = f.good();
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool Exists(const char* path) { return access(path, F_OK) == 0; }

long PerfEventOpen(struct perf_event_attr* attr) {
  return syscall(__NR_perf_event_open, attr, -1 /* any pid */, 0 /* cpu 0 */, -1, PERF_FLAG_FD_CLOEXEC);
}

// Attaches prog_fd to the perf event described by attr (tracepoint, kprobe).
Result AttachPerf(int progFd, struct perf_event_attr* attr, const char* what) {
  Fd pfd(static_cast<int>(PerfEventOpen(attr)));
  if (pfd.get() < 0) return Result::No(std::string(what) + " perf_event_open failed: " + ErrnoText(errno));
  if (ioctl(pfd.get(), PERF_EVENT_IOC_SET_BPF, progFd) != 0) {
    return Result::No(std::string("attach refused: ") + ErrnoText(errno));
  }
  return Result::Yes();
}

// A BTF-typed program (tp_btf, fentry, lsm): what to load against what.
struct BtfProbe {
  bpf_prog_type type;
  bpf_attach_type attachType;
  int btfKind;
  std::vector<std::string> targets;  // the first one in the kernel's BTF is used
  const bpf_insn* insns;
  size_t count;
  bool attach;  // false: loading is the test (helper probes)
};

const BtfProbe kFentry{BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BTF_KIND_FUNC,
                       {"do_sys_openat2", "vfs_read"}, kReturn0, 2, true};
const BtfProbe kTpBtf{BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, BTF_KIND_TYPEDEF,
                      {"btf_trace_sched_process_exec"}, kReturn0, 2, true};
const BtfProbe kLsm{BPF_PROG_TYPE_LSM, BPF_LSM_MAC, BTF_KIND_FUNC, {"bpf_lsm_file_open"}, kReturn0, 2, true};
// vfs_truncate's first argument is a struct path *, and it is on the
// kernel's bpf_d_path allow-list.
const BtfProbe kDPathProbe{BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BTF_KIND_FUNC,
                           {"vfs_truncate"}, kDPath, sizeof kDPath / sizeof kDPath[0], false};

Result ProbeBtfProg(const struct btf* vmlinux, const BtfProbe& p) {
  if (vmlinux == nullptr) return Result::No("no kernel BTF (/sys/kernel/btf/vmlinux)");
  int id = -1;
  std::string target;
  for (const auto& t : p.targets) {
    id = btf__find_by_name_kind(vmlinux, t.c_str(), p.btfKind);
    if (id > 0) {
      target = t;
      break;
    }
  }
  if (id <= 0) return Result::No("no BTF id for " + p.targets.front());
  ProgSpec s{p.type, p.insns, p.count, p.attachType, static_cast<uint32_t>(id)};
  std::string why;
  Fd prog(Load(s, &why));
  if (prog.get() < 0) return Result::No(target + ": " + why);
  if (!p.attach) return Result::Yes();
  // BPF_RAW_TRACEPOINT_OPEN without a name attaches any BTF-typed program.
  Fd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
  if (link.get() < 0) return Result::No(target + ": attach refused: " + ErrnoText(errno));
  return Result::Yes();
}

std::string TracefsRoot() {
  for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (Exists((std::string(root) + "/events").c_str())) return root;
  }
  // Not mounted yet: tracepoint ids live only in tracefs.
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 && Exists("/sys/kernel/tracing/events")) {
    return "/sys/kernel/tracing";
  }
  return "";
}

Result ProbeTracepoint() {
  std::string root = TracefsRoot();
  if (root.empty()) return Result::No("tracefs not mounted and cannot be mounted at /sys/kernel/tracing");
  bool ok = false;
  std::string id = ReadFile(root + "/events/syscalls/sys_enter_getpid/id", &ok);
  if (!ok || id.empty()) return Result::No("no syscalls/sys_enter_getpid tracepoint in " + root);
  std::string why;
  Fd prog(Load(Spec(BPF_PROG_TYPE_TRACEPOINT, kReturn0), &why));
  if (prog.get() < 0) return Result::No(why);
  struct perf_event_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.size = sizeof attr;
  attr.config = std::stoull(id);
  attr.sample_period = 1;
  Result r = AttachPerf(prog.get(), &attr, "tracepoint");
  if (!r.ok) r.reason = "syscalls/sys_enter_getpid: " + r.reason;
  return r;
}

Result ProbeKprobe() {
  bool ok = false;
  std::string type = ReadFile("/sys/bus/event_source/devices/kprobe/type", &ok);
  if (!ok || type.empty()) {
    std::string root = TracefsRoot();
    if (!root.empty() && Exists((root + "/kprobe_events").c_str())) {
      return Result::No("no kprobe PMU (/sys/bus/event_source/devices/kprobe); only legacy kprobe_events, not supported");
    }
    return Result::No("kernel has no kprobe support (CONFIG_KPROBE_EVENTS off)");
  }
  std::string why;
  Fd prog(Load(Spec(BPF_PROG_TYPE_KPROBE, kReturn0), &why));
  if (prog.get() < 0) return Result::No(why);
  Result last = Result::No("no symbol to probe");
  for (const char* sym : {"do_sys_openat2", "do_sys_open", "vfs_read"}) {
    struct perf_event_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.type = static_cast<uint32_t>(std::stoul(type));
    attr.size = sizeof attr;
    attr.config1 = reinterpret_cast<uint64_t>(sym);  // kprobe_func
    attr.config2 = 0;                                // probe_offset
    last = AttachPerf(prog.get(), &attr, "kprobe");
    if (last.ok) return last;
    last.reason = std::string(sym) + ": " + last.reason;
  }
  return last;
}

Result ProbeRawTp() {
  std::string why;
  Fd prog(Load(Spec(BPF_PROG_TYPE_RAW_TRACEPOINT, kReturn0), &why));
  if (prog.get() < 0) return Result::No(why);
  Fd link(bpf_raw_tracepoint_open("sys_enter", prog.get()));
  if (link.get() < 0) return Result::No("sys_enter: attach refused: " + ErrnoText(errno));
  return Result::Yes();
}

// Mount point of the cgroup v2 hierarchy, from /proc/mounts.
std::string Cgroup2Root() {
  std::ifstream f("/proc/mounts");
  std::string dev, dir, type, rest;
  while (f >> dev >> dir >> type && std::getline(f, rest)) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

Result ProbeCgroupSockAddr() {
  std::string root = Cgroup2Root();
  if (root.empty()) return Result::No("no cgroup2 mount in /proc/mounts");
  ProgSpec s = Spec(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, kReturn1);  // 1 = allow
  s.expected = BPF_CGROUP_INET4_CONNECT;
  std::string why;
  Fd prog(Load(s, &why));
  if (prog.get() < 0) return Result::No(why);
  Fd cg(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cg.get() < 0) return Result::No("open " + root + ": " + ErrnoText(errno));
  Fd link(bpf_link_create(prog.get(), cg.get(), BPF_CGROUP_INET4_CONNECT, nullptr));
  if (link.get() < 0) return Result::No("connect4 on " + root + ": attach refused: " + ErrnoText(errno));
  return Result::Yes();
}

// "bpf" among the active LSMs; mounts securityfs when it is missing.
Result ProbeLsmActive() {
  const char* path = "/sys/kernel/security/lsm";
  if (!Exists(path)) mount("securityfs", "/sys/kernel/security", "securityfs", 0, nullptr);
  bool ok = false;
  std::string list = ReadFile(path, &ok);
  if (!ok) return Result::No(std::string(path) + " unreadable (securityfs not mounted and cannot be mounted?)");
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name == "bpf") return Result::Yes();
  }
  return Result::No("bpf is not an active LSM (" + list + "); boot with lsm=...,bpf");
}

struct HelperSpec {
  const char* name;
  bpf_prog_type type;
  int id;
};

const HelperSpec kHelpers[] = {
    {"bpf_ktime_get_boot_ns", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_ktime_get_boot_ns},
    {"bpf_get_current_cgroup_id", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_cgroup_id},
    {"bpf_send_signal", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_send_signal},
    {"bpf_loop", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop},
    {"bpf_ringbuf_reserve", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_ringbuf_reserve},
    {"bpf_get_current_task_btf", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_task_btf},
    {"bpf_probe_read_kernel", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_probe_read_kernel},
    {"bpf_override_return", BPF_PROG_TYPE_KPROBE, BPF_FUNC_override_return},
};

const bpf_prog_type kProgTypes[] = {
    BPF_PROG_TYPE_KPROBE,           BPF_PROG_TYPE_TRACEPOINT,  BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_TRACING,          BPF_PROG_TYPE_LSM,         BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
    BPF_PROG_TYPE_CGROUP_SOCK,      BPF_PROG_TYPE_CGROUP_SKB,  BPF_PROG_TYPE_SCHED_CLS,
    BPF_PROG_TYPE_SCHED_ACT,        BPF_PROG_TYPE_XDP,         BPF_PROG_TYPE_SOCKET_FILTER,
    BPF_PROG_TYPE_PERF_EVENT,
};

// Runs one probe; probing must never throw into JS.
template <typename F>
Result Guard(F&& probe) {
  try {
    return probe();
  } catch (const std::exception& e) {
    return Result::No(std::string("probe failed: ") + e.what());
  }
}

Napi::Value ProbeFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Object reasons = Napi::Object::New(env);
  auto record = [&](Napi::Object target, const std::string& key, const std::string& reasonKey,
                    const Result& r, const std::string& label = "") {
    target.Set(key, r.ok);
    if (!r.ok) reasons.Set(reasonKey, label.empty() ? r.reason : label + ": " + r.reason);
  };
  LibbpfLog quiet;  // expected failures: keep libbpf's warnings off stderr

  bool btfOk = Exists("/sys/kernel/btf/vmlinux");
  record(out, "btf", "btf",
         btfOk ? Result::Yes() : Result::No("/sys/kernel/btf/vmlinux missing (CONFIG_DEBUG_INFO_BTF off)"));
  int rb = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
  record(out, "ringbuf", "ringbuf",
         rb == 1   ? Result::Yes()
         : rb == 0 ? Result::No("BPF_MAP_TYPE_RINGBUF unknown to this kernel")
                   : Result::No("probe failed: " + ErrnoText(-rb)));

  Napi::Object progTypes = Napi::Object::New(env);
  for (bpf_prog_type t : kProgTypes) {
    const char* name = libbpf_bpf_prog_type_str(t);
    int r = libbpf_probe_bpf_prog_type(t, nullptr);
    record(progTypes, name, std::string("progTypes.") + name,
           r == 1   ? Result::Yes()
           : r == 0 ? Result::No("libbpf_probe_bpf_prog_type: a minimal program of this type does not load here")
                    : Result::No("probe failed: " + ErrnoText(-r)));
  }
  out.Set("progTypes", progTypes);

  struct btf* vmlinux = btfOk ? btf__load_vmlinux_btf() : nullptr;
  Napi::Object attach = Napi::Object::New(env);
  record(attach, "kprobe", "attach.kprobe", Guard(ProbeKprobe), "kprobe");
  record(attach, "fentry", "attach.fentry", ProbeBtfProg(vmlinux, kFentry), "fentry");
  record(attach, "tpBtf", "attach.tpBtf", ProbeBtfProg(vmlinux, kTpBtf), "tp_btf");
  record(attach, "rawTp", "attach.rawTp", Guard(ProbeRawTp), "raw_tp");
  record(attach, "tracepoint", "attach.tracepoint", Guard(ProbeTracepoint), "tracepoint");
  record(attach, "lsm", "attach.lsm", ProbeBtfProg(vmlinux, kLsm), "lsm");
  record(attach, "cgroupSockAddr", "attach.cgroupSockAddr", Guard(ProbeCgroupSockAddr), "cgroup_sock_addr");
  out.Set("attach", attach);

  record(out, "lsmActive", "lsmActive", Guard(ProbeLsmActive));

  Napi::Object helpers = Napi::Object::New(env);
  for (const HelperSpec& h : kHelpers) {
    int r = libbpf_probe_bpf_helper(h.type, static_cast<enum bpf_func_id>(h.id), nullptr);
    std::string type = libbpf_bpf_prog_type_str(h.type);
    record(helpers, h.name, std::string("helpers.") + h.name,
           r == 1 ? Result::Yes()
                  : Result::No(r == 0 ? "not available to " + type + " programs" : "probe failed for " + type + ": " + ErrnoText(-r)));
  }
  // libbpf cannot probe helpers of BTF-typed programs: load one that calls it.
  Result dpath = ProbeBtfProg(vmlinux, kDPathProbe);
  if (!dpath.ok) dpath.reason = "fentry program calling it: " + dpath.reason;
  record(helpers, "bpf_d_path", "helpers.bpf_d_path", dpath);
  out.Set("helpers", helpers);

  btf__free(vmlinux);
  out.Set("reasons", reasons);
  return out;
}

}  // namespace

Napi::Object InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("probeFeatures", Napi::Function::New<ProbeFeatures>(env, "probeFeatures"));
  return exports;
}

}  // namespace tetrahub
