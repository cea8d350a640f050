#include "object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>

#include "addon.h"
#include "errors.h"
#include "map.h"

namespace tetrahub {

namespace {

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Own enumerable string-keyed properties of an options sub-object.
std::map<std::string, Napi::Value> Entries(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, std::string(what) + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array names = o.GetPropertyNames();
  std::map<std::string, Napi::Value> out;
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string k = names.Get(i).ToString();
    out.emplace(k, o.Get(k));
  }
  return out;
}

bool IsCgroupProg(enum bpf_prog_type t) {
  switch (t) {
    case BPF_PROG_TYPE_CGROUP_SKB:
    case BPF_PROG_TYPE_CGROUP_SOCK:
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
    case BPF_PROG_TYPE_CGROUP_SOCKOPT:
    case BPF_PROG_TYPE_CGROUP_SYSCTL:
    case BPF_PROG_TYPE_CGROUP_DEVICE:
    case BPF_PROG_TYPE_SOCK_OPS:
      return true;
    default:
      return false;
  }
}

std::string ProgTypeName(enum bpf_prog_type t) {
  const char* s = libbpf_bpf_prog_type_str(t);
  return s != nullptr ? s : "unknown(" + std::to_string(static_cast<int>(t)) + ")";
}

// --- rodata -----------------------------------------------------------------

struct RodataVar {
  std::string section;  // ".rodata", ".rodata.cst16", ...
  uint32_t offset = 0;
  uint32_t size = 0;
  bool integer = false;
};

bool FindRodataVar(const struct btf* btf, const std::string& name, RodataVar* out) {
  uint32_t n = btf__type_cnt(btf);
  for (uint32_t id = 1; id < n; id++) {
    const struct btf_type* t = btf__type_by_id(btf, id);
    if (!btf_is_datasec(t)) continue;
    std::string sec = btf__name_by_offset(btf, t->name_off);
    if (sec.rfind(".rodata", 0) != 0) continue;
    const struct btf_var_secinfo* vs = btf_var_secinfos(t);
    for (uint16_t j = 0; j < btf_vlen(t); j++) {
      const struct btf_type* var = btf__type_by_id(btf, vs[j].type);
      if (name != btf__name_by_offset(btf, var->name_off)) continue;
      int tid = btf__resolve_type(btf, var->type);  // strips const/volatile/typedef
      const struct btf_type* vt = tid > 0 ? btf__type_by_id(btf, tid) : nullptr;
      out->section = sec;
      out->offset = vs[j].offset;
      out->size = vs[j].size;
      out->integer = vt != nullptr && (btf_is_int(vt) || btf_is_any_enum(vt));
      return true;
    }
  }
  return false;
}

// The internal map libbpf made for a data section ("<obj>.rodata" for ".rodata").
struct bpf_map* InternalMap(struct bpf_object* obj, const std::string& section) {
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    if (!bpf_map__is_internal(m)) continue;
    std::string_view n = bpf_map__name(m);
    if (n.size() >= section.size() && n.substr(n.size() - section.size()) == section) return m;
  }
  return nullptr;
}

// Two's-complement bits of an integer JS value, checked to fit `size` bytes
// as either a signed or an unsigned integer.
uint64_t IntegerBits(Napi::Env env, const std::string& name, const Napi::Value& v, uint32_t size) {
  bool negative = false;
  uint64_t bits = 0;
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t s = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (lossless) {
      negative = s < 0;
      bits = static_cast<uint64_t>(s);
    } else {
      bits = v.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) throw Napi::RangeError::New(env, "rodata." + name + " does not fit 64 bits");
    }
  } else if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::trunc(d) != d || d < -9223372036854775808.0 || d >= 18446744073709551616.0) {
      throw Napi::RangeError::New(env, "rodata." + name + " must be an integer that fits 64 bits");
    }
    negative = d < 0;
    bits = negative ? static_cast<uint64_t>(static_cast<int64_t>(d)) : static_cast<uint64_t>(d);
  } else {
    throw Napi::TypeError::New(env, "rodata." + name + " must be a number or bigint");
  }
  if (size < 8) {
    uint64_t umax = (uint64_t{1} << (size * 8)) - 1;
    int64_t smin = -static_cast<int64_t>(uint64_t{1} << (size * 8 - 1));
    bool fits = negative ? static_cast<int64_t>(bits) >= smin : bits <= umax;
    if (!fits) {
      throw Napi::RangeError::New(env, "rodata." + name + " does not fit " + std::to_string(size) + " bytes");
    }
  }
  return bits;
}

void SetRodata(Napi::Env env, struct bpf_object* obj, const std::string& file,
               const std::string& name, const Napi::Value& v) {
  const struct btf* btf = bpf_object__btf(obj);
  RodataVar var;
  if (btf == nullptr || !FindRodataVar(btf, name, &var)) {
    ThrowBpf(env, ENOENT, "rodata: no const volatile global '" + name + "' in " + file);
  }
  if (!var.integer || (var.size != 1 && var.size != 2 && var.size != 4 && var.size != 8)) {
    ThrowBpf(env, EINVAL, "rodata: '" + name + "' is not an integer of 1, 2, 4 or 8 bytes");
  }
  uint64_t bits = IntegerBits(env, name, v, var.size);
  struct bpf_map* m = InternalMap(obj, var.section);
  size_t size = 0;
  const void* init = m != nullptr ? bpf_map__initial_value(m, &size) : nullptr;
  if (init == nullptr || var.offset + var.size > size) {
    ThrowBpf(env, ENOENT, "rodata: no data for section " + var.section + " of " + file);
  }
  std::vector<uint8_t> copy(static_cast<const uint8_t*>(init), static_cast<const uint8_t*>(init) + size);
  std::memcpy(copy.data() + var.offset, &bits, var.size);  // little-endian host, as BPF
  if (bpf_map__set_initial_value(m, copy.data(), copy.size()) != 0) {
    ThrowBpf(env, errno, "rodata: set '" + name + "'");
  }
}

// --- options ----------------------------------------------------------------

void ReuseMap(Napi::Env env, struct bpf_object* obj, const std::string& name, const Napi::Value& v) {
  if (!v.IsString()) throw Napi::TypeError::New(env, "reuseMaps." + name + " must be a path");
  std::string path = v.As<Napi::String>();
  struct bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
  if (m == nullptr) ThrowBpf(env, ENOENT, "reuseMaps: no map '" + name + "'");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowBpf(env, errno, "reuseMaps: open pinned map " + path);
  struct bpf_map_info mi;
  std::memset(&mi, 0, sizeof mi);
  uint32_t len = sizeof mi;
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len) != 0 ? errno : 0;
  // A map of another shape would be accepted by libbpf and fail (or worse,
  // misbehave) only in the verifier; refuse it here with a clear message.
  if (err == 0 && (mi.type != bpf_map__type(m) || mi.key_size != bpf_map__key_size(m) ||
                   mi.value_size != bpf_map__value_size(m))) {
    close(fd);
    ThrowBpf(env, EINVAL,
             "reuseMaps: pinned map " + path + " (" + MapTypeName(mi.type) + ", key " +
                 std::to_string(mi.key_size) + ", value " + std::to_string(mi.value_size) +
                 ") does not match map '" + name + "' (" + MapTypeName(bpf_map__type(m)) + ", key " +
                 std::to_string(bpf_map__key_size(m)) + ", value " +
                 std::to_string(bpf_map__value_size(m)) + ")");
  }
  if (err == 0 && bpf_map__reuse_fd(m, fd) != 0) err = errno;
  close(fd);  // reuse_fd keeps its own dup
  if (err != 0) ThrowBpf(env, err, "reuseMaps: reuse " + path + " for map '" + name + "'");
}

void ApplyOptions(Napi::Env env, struct bpf_object* obj, const std::string& file, const Napi::Object& opts) {
  Napi::Value v;
  if (GetOpt(opts, "skipPrograms", &v)) {
    if (!v.IsArray()) throw Napi::TypeError::New(env, "skipPrograms must be an array");
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      std::string name = a.Get(i).ToString();
      struct bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str());
      if (p == nullptr) ThrowBpf(env, ENOENT, "skipPrograms: no program '" + name + "' in " + file);
      bpf_program__set_autoload(p, false);
    }
  }
  if (GetOpt(opts, "mapSizes", &v)) {
    for (auto& [name, size] : Entries(env, v, "mapSizes")) {
      struct bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
      if (m == nullptr) ThrowBpf(env, ENOENT, "mapSizes: no map '" + name + "' in " + file);
      if (!size.IsNumber() || size.As<Napi::Number>().DoubleValue() < 1 ||
          size.As<Napi::Number>().DoubleValue() > std::numeric_limits<uint32_t>::max()) {
        throw Napi::RangeError::New(env, "mapSizes." + name + " must be a positive 32-bit integer");
      }
      if (bpf_map__set_max_entries(m, size.As<Napi::Number>().Uint32Value()) != 0) {
        ThrowBpf(env, errno, "mapSizes: resize map '" + name + "'");
      }
    }
  }
  if (GetOpt(opts, "rodata", &v)) {
    for (auto& [name, value] : Entries(env, v, "rodata")) SetRodata(env, obj, file, name, value);
  }
  if (GetOpt(opts, "reuseMaps", &v)) {
    for (auto& [name, path] : Entries(env, v, "reuseMaps")) ReuseMap(env, obj, name, path);
  }
}

// --- load errors ------------------------------------------------------------

// Pieces of libbpf's warnings about a failed load.
struct LoadFailure {
  std::string program;
  std::string verifierLog;
  std::string kernelErrText;  // strerror text libbpf printed for the load
  std::string firstWarning;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    out.push_back(text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos));
    pos = eol == std::string::npos ? text.size() : eol + 1;
  }
  return out;
}

std::string After(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0 ? s.substr(prefix.size()) : s;
}

LoadFailure ParseLoadLog(const std::string& log) {
  LoadFailure f;
  bool inVerifierLog = false;
  for (const std::string& line : Lines(log)) {
    if (inVerifierLog) {
      if (line == "-- END PROG LOAD LOG --") {
        inVerifierLog = false;
      } else {
        f.verifierLog += line + "\n";
      }
      continue;
    }
    std::string msg = After(line, "libbpf: ");
    if (msg.rfind("prog '", 0) == 0) {
      // The program libbpf complained about last is the one that failed.
      size_t q = msg.find('\'', 6);
      if (q != std::string::npos) f.program = msg.substr(6, q - 6);
      std::string rest = q == std::string::npos ? "" : After(msg.substr(q + 1), ": ");
      if (rest == "-- BEGIN PROG LOAD LOG --") {
        inVerifierLog = true;
        continue;
      }
      static const std::string kFailed = "BPF program load failed: ";
      if (rest.rfind(kFailed, 0) == 0) f.kernelErrText = rest.substr(kFailed.size());
    }
    // libbpf reports the cause first, then how it propagated.
    if (f.firstWarning.empty() && !msg.empty()) f.firstWarning = msg;
  }
  return f;
}

// The line of a verifier log that says what is wrong: the last one before
// the statistics the verifier appends.
std::string VerifierReason(const std::string& vlog) {
  std::string best;
  for (const std::string& line : Lines(vlog)) {
    if (line.empty() || line.rfind("processed ", 0) == 0 || line.rfind("verification time", 0) == 0 ||
        line.rfind("stack depth", 0) == 0) {
      continue;
    }
    best = line;
  }
  return best;
}

// libbpf may report its own codes (LIBBPF_ERRNO__VERIFY, ...) rather than the
// kernel's errno; recover the kernel's from the strerror text it printed.
int KernelErrno(int err, const LoadFailure& f) {
  if (err > 0 && err < __LIBBPF_ERRNO__START) return err;
  char buf[128];
  for (int e = 1; e < 134; e++) {
    if (!f.kernelErrText.empty() && f.kernelErrText == strerror_r(e, buf, sizeof buf)) return e;
  }
  return EINVAL;
}

struct ObjectArgs {
  std::shared_ptr<ObjState> st;
};

struct LinkArgs {
  std::shared_ptr<ObjState> st;
  size_t index;
};

}  // namespace

// --- ObjState ---------------------------------------------------------------

void ObjState::DestroyLink(size_t i) {
  if (i < links.size() && links[i] != nullptr) {
    bpf_link__destroy(links[i]);
    links[i] = nullptr;
  }
}

void ObjState::Close() {
  for (size_t i = 0; i < links.size(); i++) DestroyLink(i);
  if (obj != nullptr) bpf_object__close(obj);
  obj = nullptr;
}

// --- BpfObject --------------------------------------------------------------

Napi::Function ObjectWrap::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceAccessor<&ObjectWrap::Path>("path"),
                         InstanceMethod<&ObjectWrap::Programs>("programs"),
                         InstanceMethod<&ObjectWrap::Maps>("maps"),
                         InstanceMethod<&ObjectWrap::Load>("load"),
                         InstanceMethod<&ObjectWrap::Attach>("attach"),
                         InstanceMethod<&ObjectWrap::Map>("map"),
                         InstanceMethod<&ObjectWrap::Close>("close"),
                     });
}

ObjectWrap::ObjectWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ObjectWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "BpfObject is created by openObject()");
  }
  st_ = info[0].As<Napi::External<ObjectArgs>>().Data()->st;
}

bpf_object* ObjectWrap::Live(Napi::Env env, const char* op) const {
  if (st_->obj == nullptr) ThrowBpf(env, EBADF, std::string(op) + " " + st_->path + " (closed)");
  return st_->obj;
}

Napi::Value ObjectWrap::Path(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), st_->path);
}

Napi::Value ObjectWrap::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Live(env, "list programs of");
  Napi::Array out = Napi::Array::New(env);
  struct bpf_program* p;
  uint32_t i = 0;
  bpf_object__for_each_program(p, obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("type", ProgTypeName(bpf_program__type(p)));
    out.Set(i++, o);
  }
  return out;
}

Napi::Value ObjectWrap::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Live(env, "list maps of");
  Napi::Array out = Napi::Array::New(env);
  struct bpf_map* m;
  uint32_t i = 0;
  bpf_object__for_each_map(m, obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", MapTypeName(bpf_map__type(m)));
    o.Set("keySize", bpf_map__key_size(m));
    o.Set("valueSize", bpf_map__value_size(m));
    o.Set("maxEntries", bpf_map__max_entries(m));
    out.Set(i++, o);
  }
  return out;
}

Napi::Value ObjectWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Live(env, "load");
  std::string file = Basename(st_->path);
  if (st_->loadTried) ThrowBpf(env, EALREADY, "load " + file + ": already loaded (or failed); open it again");
  st_->loadTried = true;
  LibbpfLog log;
  int ret = bpf_object__load(obj);
  if (ret == 0) {
    st_->loaded = true;
    return env.Undefined();
  }
  LoadFailure f = ParseLoadLog(log.text());
  int err = KernelErrno(-ret, f);
  std::string what = "load " + file;
  if (-ret >= __LIBBPF_ERRNO__START) {
    char buf[128];
    libbpf_strerror(ret, buf, sizeof buf);
    what += " [libbpf: " + std::string(buf) + "]";
  }
  if (!f.program.empty()) what += ": program '" + f.program + "'";
  std::string reason = VerifierReason(f.verifierLog);
  if (!reason.empty()) {
    what += " rejected by the verifier (" + reason + ")";
  } else if (!f.firstWarning.empty()) {
    what += " (" + f.firstWarning + ")";
  }
  ThrowBpf(env, err, what, {f.program, f.verifierLog, log.text()});
}

Napi::Value ObjectWrap::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Live(env, "attach a program of");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "program must be a string");
  std::string name = info[0].As<Napi::String>();
  struct bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str());
  if (p == nullptr) ThrowBpf(env, ENOENT, "attach: no program '" + name + "' in " + Basename(st_->path));
  std::string what = "attach program '" + name + "' (" + bpf_program__section_name(p) + ")";
  if (!st_->loaded || bpf_program__fd(p) < 0) {
    ThrowBpf(env, EINVAL, what + ": not loaded (load() first; skipped programs cannot attach)", {name});
  }
  std::string cgroupPath, tracepoint, kprobe;
  bool retprobe = false;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value v;
    if (GetOpt(info[1].As<Napi::Object>(), "cgroupPath", &v)) cgroupPath = v.ToString();
    // Target overrides: one generic program attached to a target chosen at run time.
    if (GetOpt(info[1].As<Napi::Object>(), "tracepoint", &v)) tracepoint = v.ToString();
    if (GetOpt(info[1].As<Napi::Object>(), "kprobe", &v)) kprobe = v.ToString();
    if (GetOpt(info[1].As<Napi::Object>(), "retprobe", &v)) retprobe = v.ToBoolean();
  }
  LibbpfLog log;
  struct bpf_link* link = nullptr;
  if (IsCgroupProg(bpf_program__type(p))) {
    if (cgroupPath.empty()) throw Napi::TypeError::New(env, what + ": cgroup programs need opts.cgroupPath");
    int cg = open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0) ThrowBpf(env, errno, what + ": open cgroup " + cgroupPath, {name});
    link = bpf_program__attach_cgroup(p, cg);
    int err = errno;
    close(cg);  // the link holds its own reference to the cgroup
    errno = err;
  } else if (!tracepoint.empty()) {
    size_t slash = tracepoint.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == tracepoint.size()) {
      throw Napi::TypeError::New(env, what + ": opts.tracepoint must be \"category/name\"");
    }
    what += " at tracepoint " + tracepoint;
    link = bpf_program__attach_tracepoint(p, tracepoint.substr(0, slash).c_str(), tracepoint.substr(slash + 1).c_str());
  } else if (!kprobe.empty()) {
    what += std::string(" at ") + (retprobe ? "kretprobe " : "kprobe ") + kprobe;
    link = bpf_program__attach_kprobe(p, retprobe, kprobe.c_str());
  } else {
    link = bpf_program__attach(p);
  }
  if (link == nullptr) ThrowBpf(env, errno, what, {name, "", log.text()});
  st_->links.push_back(link);
  LinkArgs args{st_, st_->links.size() - 1};
  return Data(env).linkCtor.New({Napi::External<LinkArgs>::New(env, &args)});
}

Napi::Value ObjectWrap::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* obj = Live(env, "get a map of");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "map name must be a string");
  std::string name = info[0].As<Napi::String>();
  struct bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
  if (m == nullptr) ThrowBpf(env, ENOENT, "no map '" + name + "' in " + Basename(st_->path));
  if (!st_->loaded || bpf_map__fd(m) < 0) ThrowBpf(env, EINVAL, "map '" + name + "': object not loaded");
  // Its own fd, so the map outlives close() of the object.
  int fd = fcntl(bpf_map__fd(m), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowBpf(env, errno, "map '" + name + "': dup fd");
  MapMeta meta;
  meta.name = bpf_map__name(m);
  meta.type = bpf_map__type(m);
  meta.keySize = bpf_map__key_size(m);
  meta.valueSize = bpf_map__value_size(m);
  meta.maxEntries = bpf_map__max_entries(m);
  return MapWrap::Create(env, fd, meta);
}

Napi::Value ObjectWrap::Close(const Napi::CallbackInfo& info) {
  st_->Close();
  return info.Env().Undefined();
}

// --- BpfLink ----------------------------------------------------------------

Napi::Function LinkWrap::Define(Napi::Env env) {
  return DefineClass(env, "BpfLink", {InstanceMethod<&LinkWrap::Destroy>("destroy")});
}

LinkWrap::LinkWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LinkWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "BpfLink is created by BpfObject.attach()");
  }
  LinkArgs* a = info[0].As<Napi::External<LinkArgs>>().Data();
  st_ = a->st;
  index_ = a->index;
}

Napi::Value LinkWrap::Destroy(const Napi::CallbackInfo& info) {
  st_->DestroyLink(index_);
  return info.Env().Undefined();
}

// --- openObject -------------------------------------------------------------

static Napi::Value OpenObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>();
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  std::string pinRoot;
  Napi::Value v;
  if (GetOpt(opts, "pinRoot", &v)) pinRoot = v.ToString();

  LibbpfLog log;
  struct bpf_object_open_opts oo;
  InitOpts(oo);
  if (!pinRoot.empty()) oo.pin_root_path = pinRoot.c_str();
  auto st = std::make_shared<ObjState>();
  st->path = path;
  st->obj = bpf_object__open_file(path.c_str(), &oo);
  if (st->obj == nullptr) ThrowBpf(env, errno, "open " + path, {"", "", log.text()});
  ApplyOptions(env, st->obj, Basename(path), opts);  // on throw, st closes the object
  ObjectArgs args{st};
  return Data(env).objectCtor.New({Napi::External<ObjectArgs>::New(env, &args)});
}

Napi::Object InitObject(Napi::Env env, Napi::Object exports) {
  Data(env).objectCtor = Napi::Persistent(ObjectWrap::Define(env));
  Data(env).linkCtor = Napi::Persistent(LinkWrap::Define(env));
  exports.Set("openObject", Napi::Function::New<OpenObject>(env, "openObject"));
  return exports;
}

}  // namespace tetrahub
