// BpfMap: a JS handle on one map fd (its own fd: a dup for maps of an object).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace tetrahub {

struct MapMeta {
  std::string name;
  uint32_t type = 0;
  uint32_t keySize = 0;
  uint32_t valueSize = 0;
  uint32_t maxEntries = 0;
};

std::string MapTypeName(uint32_t type);

class MapWrap : public Napi::ObjectWrap<MapWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps fd in a new JS BpfMap; the map takes ownership of fd.
  static Napi::Object Create(Napi::Env env, int fd, const MapMeta& meta);
  // The MapWrap behind a JS value, or nullptr if it is not a BpfMap.
  static MapWrap* From(Napi::Env env, Napi::Value v);

  explicit MapWrap(const Napi::CallbackInfo& info);
  ~MapWrap() override;

  int fd() const { return fd_; }
  const MapMeta& meta() const { return meta_; }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value Keys(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  int LiveFd(Napi::Env env, const char* op) const;
  size_t ValueBytes() const;
  std::string What(const char* op) const;

  int fd_ = -1;
  MapMeta meta_;
};

}  // namespace tetrahub
