// RingConsumer: one native thread drains every ring buffer of an agent into
// double-buffered batches, and hands each full (or flushMs-old) batch to JS
// with a single thread-safe-function call.
//
// Back-pressure: the thread fills one batch while JS reads the other. When
// both are with JS, the thread waits instead of reading the rings, so the
// kernel rings fill up and the BPF side counts its drops.
#include <bpf/libbpf.h>
#include <napi.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <new>
#include <mutex>
#include <thread>
#include <vector>

#include "addon.h"
#include "errors.h"
#include "map.h"

namespace tetrahub {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kRecordHeader = 8;  // u32 length, u32 ring index
inline size_t Pad8(size_t n) { return (n + 7) & ~static_cast<size_t>(7); }

enum class BatchState { kFree, kFilling, kQueued, kInJs };

struct Batch {
  std::unique_ptr<uint8_t[]> mem;
  size_t used = 0;
  uint32_t records = 0;
  BatchState state = BatchState::kFree;
  uint64_t seq = 0;  // order of handing over; 0 = never
};

// One TSFN call: "batch `index` was handed over as number `seq`".
struct Handover {
  int index;
  uint64_t seq;
};

struct RingCore;
void CallJs(Napi::Env env, Napi::Function fn, std::shared_ptr<RingCore>* ctx, Handover* h);
using Tsfn = Napi::TypedThreadSafeFunction<std::shared_ptr<RingCore>, Handover, CallJs>;

struct RingSlot {
  RingCore* core;
  uint32_t index;
};

struct RingCore {
  size_t batchBytes = 0;
  int flushMs = 0;
  int pollMs = 10;
  std::vector<int> fds;  // our own dups of the ring maps
  std::vector<std::unique_ptr<RingSlot>> slots;
  struct ring_buffer* rb = nullptr;
  int epfd = -1;
  int wakefd = -1;  // eventfd: stop() wakes the thread out of epoll_wait

  std::mutex mu;
  std::condition_variable cv;
  Batch bufs[2];
  uint64_t lastSeq = 0;
  bool threadDone = false;
  std::atomic<bool> stopping{false};
  std::atomic<bool> aborting{false};  // env teardown: JS can no longer be called
  bool hookRan = false;               // TeardownHook freed its argument

  // Owned by the consumer thread only.
  int cur = -1;
  Clock::time_point firstAt;

  std::atomic<uint64_t> records{0}, batches{0}, bytes{0}, dropped{0};
  std::thread thread;
  Tsfn tsfn;

  ~RingCore() {
    Abort();  // defensive: a joinable std::thread must not be destroyed
    if (rb != nullptr) ring_buffer__free(rb);
    for (int fd : fds) close(fd);
    if (epfd >= 0) close(epfd);
    if (wakefd >= 0) close(wakefd);
  }

  // Stops the thread without calling JS again (env teardown).
  void Abort() {
    {
      std::lock_guard<std::mutex> lk(mu);
      aborting = true;
    }
    cv.notify_all();
    if (wakefd >= 0) Wake();
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t r = write(wakefd, &one, sizeof one);
    (void)r;
  }

  // --- consumer thread ---

  // Waits for a free batch; false when the addon is being torn down.
  bool Acquire() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      if (aborting) return false;
      for (int i = 0; i < 2; i++) {
        if (bufs[i].state == BatchState::kFree) {
          bufs[i].state = BatchState::kFilling;
          cur = i;
          return true;
        }
      }
      cv.wait(lk);
    }
  }

  void HandOver() {
    int i = cur;
    cur = -1;
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lk(mu);
      seq = ++lastSeq;
      bufs[i].state = BatchState::kQueued;
      bufs[i].seq = seq;
    }
    cv.notify_all();  // stop() may be waiting for batches to deliver itself
    auto* h = new Handover{i, seq};
    if (tsfn.NonBlockingCall(h) != napi_ok) {
      // The function is closing (env teardown): nobody will read this batch.
      delete h;
      std::lock_guard<std::mutex> lk(mu);
      if (bufs[i].state == BatchState::kQueued && bufs[i].seq == seq) {
        dropped += bufs[i].records;
        bufs[i].used = 0;
        bufs[i].records = 0;
        bufs[i].state = BatchState::kFree;
      }
    }
  }

  int Append(uint32_t ring, const void* data, size_t len) {
    size_t need = kRecordHeader + Pad8(len);
    if (need > batchBytes) {
      dropped++;
      return 0;
    }
    if (cur >= 0 && bufs[cur].used + need > batchBytes) HandOver();
    if (cur < 0 && !Acquire()) {
      dropped++;
      return 0;
    }
    Batch& b = bufs[cur];
    uint8_t* p = b.mem.get() + b.used;
    uint32_t hdr[2] = {static_cast<uint32_t>(len), ring};
    std::memcpy(p, hdr, sizeof hdr);
    std::memcpy(p + kRecordHeader, data, len);
    std::memset(p + kRecordHeader + len, 0, Pad8(len) - len);
    if (b.records == 0) firstAt = Clock::now();
    b.used += need;
    b.records++;
    return 0;
  }

  bool Pending() const { return cur >= 0 && bufs[cur].records > 0; }

  // Producers may submit without waking us (wake-ups cost tens of µs each in
  // the producing task), so the rings are also drained every pollMs.
  int MsUntilFlush() const {
    if (!Pending()) return pollMs;
    auto age = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - firstAt).count();
    int left = age >= flushMs ? 0 : static_cast<int>(flushMs - age);
    return left < pollMs ? left : pollMs;
  }

  void Run() {
    struct epoll_event events[4];
    while (!stopping && !aborting) {
      int n = epoll_wait(epfd, events, 4, MsUntilFlush());
      if (n < 0 && errno != EINTR) break;
      if (stopping || aborting) break;
      ring_buffer__consume(rb);
      if (Pending()) {
        auto age = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - firstAt).count();
        if (age >= flushMs) HandOver();
      }
    }
    if (!aborting) {
      ring_buffer__consume(rb);  // what is already in the rings is flushed too
      if (Pending()) HandOver();
    }
    std::lock_guard<std::mutex> lk(mu);
    if (cur >= 0 && bufs[cur].records == 0) bufs[cur].state = BatchState::kFree;
    cur = -1;
    threadDone = true;
    cv.notify_all();
  }

  // --- JS thread ---

  // Calls onBatch with batch i (state kInJs), then frees it. Returns the JS
  // error onBatch threw, if any, so callers decide where it surfaces.
  bool Deliver(Napi::Env env, Napi::Function fn, int i, Napi::Error* error) {
    Batch& b = bufs[i];
    bool threw = false;
    {
      Napi::HandleScope scope(env);
      // Wraps native memory: no copy. Detached after the call so a Buffer
      // kept by mistake reads as empty instead of as a later batch.
      Napi::Buffer<uint8_t> view = Napi::Buffer<uint8_t>::New(env, b.mem.get(), b.used);
      try {
        fn.Call({view, Napi::Number::New(env, b.records)});
      } catch (const Napi::Error& e) {
        *error = e;
        threw = true;
      }
      napi_detach_arraybuffer(env, view.ArrayBuffer());
    }
    batches++;
    records += b.records;
    bytes += b.used;
    {
      std::lock_guard<std::mutex> lk(mu);
      b.used = 0;
      b.records = 0;
      b.state = BatchState::kFree;
    }
    cv.notify_all();
    return threw;
  }

  // The queued batch handed over first, or -1. Caller holds mu.
  int OldestQueued() const {
    int best = -1;
    for (int i = 0; i < 2; i++) {
      if (bufs[i].state == BatchState::kQueued && (best < 0 || bufs[i].seq < bufs[best].seq)) best = i;
    }
    return best;
  }
};

void CallJs(Napi::Env env, Napi::Function fn, std::shared_ptr<RingCore>* ctx, Handover* h) {
  std::unique_ptr<Handover> own(h);
  if (env == nullptr || ctx == nullptr) return;  // closing
  RingCore& core = **ctx;
  {
    std::lock_guard<std::mutex> lk(core.mu);
    Batch& b = core.bufs[h->index];
    // stop() may have delivered it already.
    if (b.state != BatchState::kQueued || b.seq != h->seq) return;
    b.state = BatchState::kInJs;
  }
  Napi::Error err;
  if (core.Deliver(env, fn, h->index, &err)) {
    // Nothing on the JS stack can catch this: report it as uncaught.
    napi_fatal_exception(env, err.Value());
  }
}

int OnSample(void* ctx, void* data, size_t len) {
  auto* slot = static_cast<RingSlot*>(ctx);
  return slot->core->Append(slot->index, data, len);
}

void TeardownHook(void* arg) {
  auto* core = static_cast<std::shared_ptr<RingCore>*>(arg);
  (*core)->hookRan = true;
  (*core)->Abort();
  delete core;
}

class RingWrap : public Napi::ObjectWrap<RingWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingConsumer",
                       {
                           InstanceMethod<&RingWrap::Start>("start"),
                           InstanceMethod<&RingWrap::Stop>("stop"),
                           InstanceMethod<&RingWrap::Stats>("stats"),
                       });
  }

  explicit RingWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingWrap>(info) {
    if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(info.Env(), "RingConsumer is created by createRingConsumer()");
    }
    core_ = *info[0].As<Napi::External<std::shared_ptr<RingCore>>>().Data();
    onBatch_ = Napi::Persistent(info[1].As<Napi::Function>());
  }

  ~RingWrap() override {
    // Running consumers hold a reference on themselves, so this runs while
    // the thread is alive only at env teardown, if before TeardownHook.
    if (hook_ != nullptr && !core_->hookRan) {
      core_->Abort();
      napi_remove_env_cleanup_hook(Env(), TeardownHook, hook_);
      delete hook_;
    }
  }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_ == kRunning) return env.Undefined();
    if (state_ == kStopped) ThrowBpf(env, EINVAL, "ring consumer: stopped consumers cannot restart");
    core_->tsfn = Tsfn::New(env, onBatch_.Value(), "tetrahub-ring", 0, 1,
                            new std::shared_ptr<RingCore>(core_),
                            [](Napi::Env, void*, std::shared_ptr<RingCore>* ctx) { delete ctx; });
    // The consumer alone must not keep the process alive.
    core_->tsfn.Unref(env);
    hook_ = new std::shared_ptr<RingCore>(core_);
    napi_add_env_cleanup_hook(env, TeardownHook, hook_);
    Ref();  // not collected while the thread runs
    state_ = kRunning;
    RingCore* core = core_.get();
    core_->thread = std::thread([core] { core->Run(); });
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_ != kRunning) {
      state_ = kStopped;
      return env.Undefined();
    }
    state_ = kStopped;
    RingCore& core = *core_;
    core.stopping = true;
    core.Wake();
    // Deliver here what the thread hands over until it is done: the JS
    // thread is busy in stop(), so the queued TSFN calls cannot run.
    bool threw = false;
    Napi::Error first;
    {
      std::unique_lock<std::mutex> lk(core.mu);
      for (;;) {
        int i = core.OldestQueued();
        if (i >= 0) {
          core.bufs[i].state = BatchState::kInJs;
          lk.unlock();
          Napi::Error e;
          if (core.Deliver(env, onBatch_.Value(), i, &e) && !threw) {
            first = e;
            threw = true;
          }
          lk.lock();
          continue;
        }
        if (core.threadDone) break;
        core.cv.wait(lk);
      }
    }
    core.thread.join();
    core.tsfn.Release();
    napi_remove_env_cleanup_hook(env, TeardownHook, hook_);
    delete hook_;
    hook_ = nullptr;
    Unref();
    if (threw) throw first;
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("records", static_cast<double>(core_->records.load()));
    o.Set("batches", static_cast<double>(core_->batches.load()));
    o.Set("bytes", static_cast<double>(core_->bytes.load()));
    o.Set("dropped", static_cast<double>(core_->dropped.load()));
    return o;
  }

  enum { kNew, kRunning, kStopped } state_ = kNew;
  std::shared_ptr<RingCore> core_;
  std::shared_ptr<RingCore>* hook_ = nullptr;
  Napi::FunctionReference onBatch_;
};

Napi::Value CreateRingConsumer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "createRingConsumer(rings: BpfMap[], opts)");
  }
  Napi::Array rings = info[0].As<Napi::Array>();
  Napi::Object opts = info[1].As<Napi::Object>();
  Napi::Value v;
  if (!GetOpt(opts, "onBatch", &v) || !v.IsFunction()) throw Napi::TypeError::New(env, "opts.onBatch must be a function");
  Napi::Function onBatch = v.As<Napi::Function>();
  double batchBytes = 1 << 20;
  if (GetOpt(opts, "batchBytes", &v)) batchBytes = v.ToNumber().DoubleValue();
  double flushMs = 20;
  if (GetOpt(opts, "flushMs", &v)) flushMs = v.ToNumber().DoubleValue();
  if (!(batchBytes >= 64 && batchBytes <= (256u << 20))) throw Napi::RangeError::New(env, "batchBytes must be in [64, 256 MiB]");
  if (!(flushMs >= 0 && flushMs <= 3600000)) throw Napi::RangeError::New(env, "flushMs must be in [0, 3600000]");
  if (rings.Length() == 0) throw Napi::TypeError::New(env, "createRingConsumer needs at least one ring");

  auto core = std::make_shared<RingCore>();
  core->batchBytes = static_cast<size_t>(batchBytes) & ~static_cast<size_t>(7);
  core->flushMs = static_cast<int>(flushMs);
  double pollMs = 10;
  if (GetOpt(opts, "pollMs", &v)) pollMs = v.ToNumber().DoubleValue();
  if (!(pollMs >= 1 && pollMs <= 60000)) throw Napi::RangeError::New(env, "pollMs must be in [1, 60000]");
  core->pollMs = static_cast<int>(pollMs);
  try {
    for (int i = 0; i < 2; i++) core->bufs[i].mem.reset(new uint8_t[core->batchBytes]);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "batchBytes: cannot allocate two batches of " + std::to_string(core->batchBytes) + " bytes");
  }

  for (uint32_t i = 0; i < rings.Length(); i++) {
    MapWrap* m = MapWrap::From(env, rings.Get(i));
    if (m == nullptr) throw Napi::TypeError::New(env, "rings[" + std::to_string(i) + "] is not a BpfMap");
    if (m->meta().type != BPF_MAP_TYPE_RINGBUF) {
      ThrowBpf(env, EINVAL, "ring consumer: map '" + m->meta().name + "' is a " + MapTypeName(m->meta().type) + ", not a ringbuf");
    }
    if (m->fd() < 0) ThrowBpf(env, EBADF, "ring consumer: map '" + m->meta().name + "' is closed");
    // Own dups: closing the JS map must not pull the ring from under the thread.
    int fd = fcntl(m->fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) ThrowBpf(env, errno, "ring consumer: dup fd of '" + m->meta().name + "'");
    core->fds.push_back(fd);
    core->slots.push_back(std::make_unique<RingSlot>(RingSlot{core.get(), i}));
    LibbpfLog log;
    int err = 0;
    if (core->rb == nullptr) {
      core->rb = ring_buffer__new(fd, OnSample, core->slots.back().get(), nullptr);
      if (core->rb == nullptr) err = errno;
    } else if (ring_buffer__add(core->rb, fd, OnSample, core->slots.back().get()) != 0) {
      err = errno;
    }
    if (err != 0) ThrowBpf(env, err, "ring consumer: add ring '" + m->meta().name + "'", {"", "", log.text()});
  }

  core->epfd = epoll_create1(EPOLL_CLOEXEC);
  core->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (core->epfd < 0 || core->wakefd < 0) ThrowBpf(env, errno, "ring consumer: epoll/eventfd");
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.u32 = 0;
  if (epoll_ctl(core->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(core->rb), &ev) != 0 ||
      (ev.data.u32 = 1, epoll_ctl(core->epfd, EPOLL_CTL_ADD, core->wakefd, &ev)) != 0) {
    ThrowBpf(env, errno, "ring consumer: epoll_ctl");
  }
  return Data(env).ringCtor.New({Napi::External<std::shared_ptr<RingCore>>::New(env, &core), onBatch});
}

}  // namespace

Napi::Object InitRing(Napi::Env env, Napi::Object exports) {
  Data(env).ringCtor = Napi::Persistent(RingWrap::Define(env));
  exports.Set("createRingConsumer", Napi::Function::New<CreateRingConsumer>(env, "createRingConsumer"));
  return exports;
}

}  // namespace tetrahub
