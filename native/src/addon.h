// Per-environment state of the addon: the JS classes it creates instances of.
#pragma once

#include <napi.h>

#include <cstring>

namespace tetrahub {

struct AddonData {
  Napi::FunctionReference mapCtor;
  Napi::FunctionReference objectCtor;
  Napi::FunctionReference linkCtor;
  Napi::FunctionReference ringCtor;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// libbpf option structs must be zeroed (padding included) and carry their size.
template <typename T>
void InitOpts(T& opts) {
  std::memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;
}

// Reads an optional own property; undefined and null count as absent.
inline bool GetOpt(const Napi::Object& o, const char* key, Napi::Value* out) {
  if (!o.Has(key)) return false;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return false;
  *out = v;
  return true;
}

Napi::Object InitMap(Napi::Env env, Napi::Object exports);
Napi::Object InitObject(Napi::Env env, Napi::Object exports);
Napi::Object InitRing(Napi::Env env, Napi::Object exports);
Napi::Object InitProbe(Napi::Env env, Napi::Object exports);

}  // namespace tetrahub
