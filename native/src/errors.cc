#include "errors.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tetrahub {

void AppendLibbpfLog(const char* s);

namespace {
thread_local LibbpfLog* tl_capture = nullptr;
bool g_debug = false;

int PrintFn(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (tl_capture != nullptr && level != LIBBPF_DEBUG) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n > 0) {
      std::string s(static_cast<size_t>(n) + 1, '\0');
      vsnprintf(s.data(), s.size(), fmt, ap);
      s.resize(static_cast<size_t>(n));
      AppendLibbpfLog(s.c_str());
    }
    return 0;
  }
  if (g_debug) return vfprintf(stderr, fmt, ap);
  return 0;
}
}  // namespace

void AppendLibbpfLog(const char* s) {
  if (tl_capture != nullptr) tl_capture->text_ += s;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

std::string ErrnoText(int err) {
  char buf[128];
  const char* msg = strerror_r(err, buf, sizeof buf);
  return std::string(msg) + " (" + ErrnoName(err) + ")";
}

Napi::Error BpfError(Napi::Env env, int err, const std::string& what,
                     const BpfErrorDetails& d) {
  if (err < 0) err = -err;
  if (err == 0) err = EINVAL;
  Napi::Error e = Napi::Error::New(env, what + ": " + ErrnoText(err));
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("code", Napi::String::New(env, ErrnoName(err)));
  if (!d.program.empty()) o.Set("program", d.program);
  if (!d.verifierLog.empty()) o.Set("verifierLog", d.verifierLog);
  if (!d.libbpfLog.empty()) o.Set("libbpfLog", d.libbpfLog);
  return e;
}

void ThrowBpf(Napi::Env env, int err, const std::string& what,
              const BpfErrorDetails& details) {
  throw BpfError(env, err, what, details);
}

void InstallLibbpfPrint() {
  const char* dbg = getenv("TETRAHUB_LIBBPF_DEBUG");
  g_debug = dbg != nullptr && *dbg != '\0' && strcmp(dbg, "0") != 0;
  libbpf_set_print(PrintFn);
}

LibbpfLog::LibbpfLog() : prev_(tl_capture) { tl_capture = this; }

LibbpfLog::~LibbpfLog() {
  tl_capture = prev_;
  if (prev_ != nullptr) prev_->text_ += text_;
}

}  // namespace tetrahub
