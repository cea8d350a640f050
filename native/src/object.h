// BpfObject and BpfLink: an ELF object opened and loaded with libbpf.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

struct bpf_object;
struct bpf_link;

namespace tetrahub {

// Shared by the object handle and its links, so a link keeps the object
// (and the object's close() detaches every link).
struct ObjState {
  bpf_object* obj = nullptr;
  std::string path;
  bool loadTried = false;
  bool loaded = false;
  std::vector<bpf_link*> links;  // nullptr once destroyed

  void DestroyLink(size_t i);
  void Close();
  ~ObjState() { Close(); }
};

class ObjectWrap : public Napi::ObjectWrap<ObjectWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ObjectWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Path(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  bpf_object* Live(Napi::Env env, const char* op) const;

  std::shared_ptr<ObjState> st_;
};

class LinkWrap : public Napi::ObjectWrap<LinkWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit LinkWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  std::shared_ptr<ObjState> st_;
  size_t index_ = 0;
};

}  // namespace tetrahub
