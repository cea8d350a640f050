// Error shape shared by the whole addon, and capture of libbpf's log output.
#pragma once

#include <napi.h>

#include <string>

namespace tetrahub {

// "EPERM" for EPERM; "E<n>" when the C library has no name for it.
std::string ErrnoName(int err);

// "Operation not permitted (EPERM)".
std::string ErrnoText(int err);

struct BpfErrorDetails {
  std::string program;
  std::string verifierLog;
  std::string libbpfLog;
};

// A JS Error whose message is "<what>: <strerror> (<ENAME>)" and which carries
// errno (positive), code, and whichever of program/verifierLog/libbpfLog are set.
Napi::Error BpfError(Napi::Env env, int err, const std::string& what,
                     const BpfErrorDetails& details = {});

// Throws BpfError as a C++ exception (NAPI_CPP_EXCEPTIONS).
[[noreturn]] void ThrowBpf(Napi::Env env, int err, const std::string& what,
                           const BpfErrorDetails& details = {});

// Installs the process-wide libbpf print callback. Outside a LibbpfLog scope
// messages go to stderr only when TETRAHUB_LIBBPF_DEBUG is set, so expected
// failures (feature probes) stay quiet.
void InstallLibbpfPrint();

// While alive, libbpf messages printed on this thread are collected here,
// so they can be attached to the JS error of the operation that caused them.
class LibbpfLog {
 public:
  LibbpfLog();
  ~LibbpfLog();
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;
  const std::string& text() const { return text_; }

 private:
  friend void AppendLibbpfLog(const char* s);
  std::string text_;
  LibbpfLog* prev_;
};

}  // namespace tetrahub
