#include "map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "addon.h"
#include "errors.h"

namespace tetrahub {

namespace {

bool IsPerCpu(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

// The bytes of a Uint8Array (Buffer included) argument, checked for length.
const uint8_t* BytesArg(const Napi::CallbackInfo& info, size_t i, size_t want,
                        const std::string& what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, what + " must be a Uint8Array or Buffer");
  }
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  if (a.ByteLength() != want) {
    ThrowBpf(env, EINVAL,
             what + " is " + std::to_string(a.ByteLength()) + " bytes, the map wants " +
                 std::to_string(want));
  }
  return a.Data();
}

// Carries Create()'s arguments through the JS constructor call.
struct CreateArgs {
  int fd;
  const MapMeta* meta;
};

}  // namespace

std::string MapTypeName(uint32_t type) {
  const char* s = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type));
  return s != nullptr ? s : "unknown(" + std::to_string(type) + ")";
}

Napi::Function MapWrap::Define(Napi::Env env) {
  return DefineClass(env, "BpfMap",
                     {
                         InstanceAccessor<&MapWrap::Fd>("fd"),
                         InstanceMethod<&MapWrap::Lookup>("lookup"),
                         InstanceMethod<&MapWrap::Update>("update"),
                         InstanceMethod<&MapWrap::Delete>("delete"),
                         InstanceMethod<&MapWrap::Keys>("keys"),
                         InstanceMethod<&MapWrap::Pin>("pin"),
                         InstanceMethod<&MapWrap::Close>("close"),
                     });
}

Napi::Object MapWrap::Create(Napi::Env env, int fd, const MapMeta& meta) {
  CreateArgs args{fd, &meta};
  return Data(env).mapCtor.New({Napi::External<CreateArgs>::New(env, &args)});
}

MapWrap* MapWrap::From(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(Data(env).mapCtor.Value())) {
    return nullptr;
  }
  return Unwrap(v.As<Napi::Object>());
}

MapWrap::MapWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MapWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "BpfMap is created by openObject().map() or openPinnedMap()");
  }
  const CreateArgs* args = info[0].As<Napi::External<CreateArgs>>().Data();
  fd_ = args->fd;
  meta_ = *args->meta;
  // Plain read-only data properties, so the map prints like BpfMapInfo.
  auto ro = static_cast<napi_property_attributes>(napi_enumerable);
  info.This().As<Napi::Object>().DefineProperties({
      Napi::PropertyDescriptor::Value("name", Napi::String::New(env, meta_.name), ro),
      Napi::PropertyDescriptor::Value("type", Napi::String::New(env, MapTypeName(meta_.type)), ro),
      Napi::PropertyDescriptor::Value("keySize", Napi::Number::New(env, meta_.keySize), ro),
      Napi::PropertyDescriptor::Value("valueSize", Napi::Number::New(env, meta_.valueSize), ro),
      Napi::PropertyDescriptor::Value("maxEntries", Napi::Number::New(env, meta_.maxEntries), ro),
  });
}

MapWrap::~MapWrap() {
  if (fd_ >= 0) close(fd_);
}

std::string MapWrap::What(const char* op) const {
  return std::string(op) + " map '" + meta_.name + "'";
}

int MapWrap::LiveFd(Napi::Env env, const char* op) const {
  if (fd_ < 0) ThrowBpf(env, EBADF, What(op) + " (closed)");
  return fd_;
}

size_t MapWrap::ValueBytes() const {
  if (!IsPerCpu(meta_.type)) return meta_.valueSize;
  // The kernel copies one 8-byte-aligned slot per possible CPU.
  size_t slot = (static_cast<size_t>(meta_.valueSize) + 7) & ~static_cast<size_t>(7);
  int cpus = libbpf_num_possible_cpus();
  return slot * static_cast<size_t>(cpus > 0 ? cpus : 1);
}

Napi::Value MapWrap::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value MapWrap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LiveFd(env, "lookup in");
  const uint8_t* key = BytesArg(info, 0, meta_.keySize, "key");
  std::vector<uint8_t> value(ValueBytes());
  if (bpf_map_lookup_elem(fd, key, value.data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Null();
    ThrowBpf(env, err, What("lookup in"));
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

Napi::Value MapWrap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LiveFd(env, "update");
  const uint8_t* key = BytesArg(info, 0, meta_.keySize, "key");
  const uint8_t* value = BytesArg(info, 1, ValueBytes(), "value");
  uint64_t flags = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "flags must be a number");
    flags = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  }
  if (bpf_map_update_elem(fd, key, value, flags) != 0) ThrowBpf(env, errno, What("update"));
  return env.Undefined();
}

Napi::Value MapWrap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LiveFd(env, "delete from");
  const uint8_t* key = BytesArg(info, 0, meta_.keySize, "key");
  if (bpf_map_delete_elem(fd, key) != 0) {
    int err = errno;
    if (err == ENOENT) return Napi::Boolean::New(env, false);
    ThrowBpf(env, err, What("delete from"));
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value MapWrap::Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LiveFd(env, "list keys of");
  Napi::Array out = Napi::Array::New(env);
  std::vector<uint8_t> cur(meta_.keySize), next(meta_.keySize);
  const void* prev = nullptr;  // NULL asks for the first key
  // Bounded: a hash map being rewritten concurrently can restart iteration.
  for (uint32_t n = 0; n < meta_.maxEntries; n++) {
    if (bpf_map_get_next_key(fd, prev, next.data()) != 0) {
      int err = errno;
      if (err == ENOENT) break;
      ThrowBpf(env, err, What("list keys of"));
    }
    out.Set(n, Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size()));
    cur.swap(next);
    prev = cur.data();
  }
  return out;
}

Napi::Value MapWrap::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LiveFd(env, "pin");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>();
  if (bpf_obj_pin(fd, path.c_str()) != 0) ThrowBpf(env, errno, What("pin") + " at " + path);
  return env.Undefined();
}

Napi::Value MapWrap::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

// openPinnedMap(path): a map pinned in bpffs, described by the kernel.
static Napi::Value OpenPinnedMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowBpf(env, errno, "open pinned map " + path);
  // bpf_obj_get also opens programs and links: make sure this is a map
  // before reading bpf_map_info out of it.
  char link[64] = {0};
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(self.c_str(), link, sizeof link - 1);
  if (n < 0 || std::string(link) != "anon_inode:bpf-map") {
    close(fd);
    ThrowBpf(env, EINVAL, "open pinned map " + path + ": not a map (" + link + ")");
  }
  struct bpf_map_info mi;
  std::memset(&mi, 0, sizeof mi);
  uint32_t len = sizeof mi;
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) {
    int err = errno;
    close(fd);
    ThrowBpf(env, err, "read info of pinned map " + path);
  }
  MapMeta meta;
  meta.name = mi.name;
  meta.type = mi.type;
  meta.keySize = mi.key_size;
  meta.valueSize = mi.value_size;
  meta.maxEntries = mi.max_entries;
  return MapWrap::Create(env, fd, meta);
}

Napi::Object InitMap(Napi::Env env, Napi::Object exports) {
  Data(env).mapCtor = Napi::Persistent(MapWrap::Define(env));
  exports.Set("openPinnedMap", Napi::Function::New<OpenPinnedMap>(env, "openPinnedMap"));
  return exports;
}

}  // namespace tetrahub
