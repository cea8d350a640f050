// Module entry: registers the classes and the small free functions.
#include <bpf/libbpf.h>
#include <napi.h>

#include <ctime>

#include "addon.h"
#include "errors.h"

namespace tetrahub {

namespace {

Napi::Value Clocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct timespec boot, real;
  clock_gettime(CLOCK_BOOTTIME, &boot);  // what bpf_ktime_get_boot_ns() reads
  clock_gettime(CLOCK_REALTIME, &real);
  auto ns = [](const struct timespec& t) -> uint64_t {
    return static_cast<uint64_t>(static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec));
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("boottime", Napi::BigInt::New(env, ns(boot)));
  o.Set("realtime", Napi::BigInt::New(env, ns(real)));
  return o;
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InstallLibbpfPrint();
  InitMap(env, exports);
  InitObject(env, exports);
  InitRing(env, exports);
  InitProbe(env, exports);
  exports.Set("clocks", Napi::Function::New<Clocks>(env, "clocks"));
  exports.Set("libbpfVersion", Napi::Function::New<LibbpfVersion>(env, "libbpfVersion"));
  return exports;
}

}  // namespace tetrahub

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tetrahub::Init(env, exports); }

NODE_API_MODULE(tetrahub_native, InitModule)
