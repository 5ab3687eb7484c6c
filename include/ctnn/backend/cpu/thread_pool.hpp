// The CPU backend's worker threads: a work-sharing loop in which the calling
// thread takes part and never waits for a worker that has not started a
// task.
//
// Why not an OpenMP parallel region: its end is a barrier that every thread
// of the team must reach. When another program keeps one of the two cores
// busy, a worker of ours can be off the CPU for a whole scheduler time slice,
// and every one of a forward pass's ~25 steps waits for it: measured here,
// a 6 ms ResNet-18 pass became 270 ms while another helper's job ran. Here a
// worker that is not running simply takes no tasks, the caller does them,
// and the pass degrades to single-thread speed instead.
//
// Tasks are claimed one at a time from a shared counter; which thread runs a
// task never changes its arithmetic, so results do not depend on the thread
// count. Publishing a job, claiming and finishing tasks allocate nothing.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "ctnn/backend/cpu/simd.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

// The thread count OpenMP would use here (OMP_NUM_THREADS,
// omp_set_num_threads) in a translation unit compiled with OpenMP; otherwise
// OMP_NUM_THREADS once, else what the hardware offers.
inline int thread_count() {
#if defined(_OPENMP)
  return std::max(1, omp_get_max_threads());
#else
  static const int threads = [] {
    if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0) return std::atoi(env);
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return threads;
#endif
}

class ThreadPool {
 public:
  // `threads` participants: the caller and threads - 1 workers.
  explicit ThreadPool(int threads) : state_(std::make_unique<State>()) {
    const int workers = std::max(0, threads - 1);
    workers_.reserve(static_cast<std::size_t>(workers));
    for (int i = 0; i < workers; ++i) workers_.emplace_back([s = state_.get(), id = i + 1] { work(*s, id); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    State& s = *state_;
    s.stop.store(true);
    s.generation.fetch_add(2);  // even: no job, but every worker wakes and sees `stop`
    wake(s);
    for (std::thread& t : workers_) t.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body(task, participant) for every task in [0, tasks), with at most
  // `limit` participants (ids 0 .. limit-1, 0 is the caller), claiming
  // `grain` tasks at a time (0: a few claims per participant). Returns when
  // every task has finished.
  template <class F>
  void run(long tasks, int limit, F&& body, long grain = 0) {
    if (tasks <= 0) return;
    State& s = *state_;
    if (workers_.empty() || limit <= 1 || tasks == 1) {
      for (long t = 0; t < tasks; ++t) body(t, 0);
      return;
    }
    // Seqlock-style publication: an odd generation means "being written";
    // wait for workers still inside the previous job to leave it.
    s.generation.fetch_add(1);
    while (s.inside.load() != 0) pause();
    s.invoke = [](void* f, long t, int id) { (*static_cast<std::remove_reference_t<F>*>(f))(t, id); };
    s.body = &body;
    s.tasks = tasks;
    s.limit = limit;
    // Small tasks are claimed a few at a time: one shared-counter update
    // per task would cost more than a row of an element-wise op.
    s.grain = grain > 0 ? grain : std::max(1L, tasks / (8L * limit));
    s.next.store(0, std::memory_order_relaxed);
    s.done.store(0, std::memory_order_relaxed);
    s.generation.fetch_add(1);  // even again: published
    if (s.sleepers.load() > 0) wake(s);

    take_tasks(s, 0);
    // Wait for tasks that workers are still running; yield now and then so
    // that a worker sharing this core gets to finish.
    for (long spins = 0; s.done.load(std::memory_order_acquire) < tasks; ++spins) {
      if (spins < 20000)
        pause();
      else
        std::this_thread::yield();
    }
  }

 private:
  struct State {
    std::atomic<std::uint32_t> generation{0};
    std::atomic<int> inside{0};    // workers reading or running the current job
    std::atomic<int> sleepers{0};  // workers about to block or blocked on `wakeup`
    std::mutex mutex;
    std::condition_variable wakeup;
    std::atomic<bool> stop{false};
    void (*invoke)(void*, long, int) = nullptr;
    void* body = nullptr;
    long tasks = 0;
    long grain = 1;
    int limit = 0;
    alignas(64) std::atomic<long> next{0};
    alignas(64) std::atomic<long> done{0};
  };

  // Taking the mutex orders this wake-up after any sleeper's last look at
  // the generation (which it takes under the mutex), so none is lost.
  static void wake(State& s) {
    { std::lock_guard<std::mutex> lock(s.mutex); }
    s.wakeup.notify_all();
  }

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  static void take_tasks(State& s, int id) {
    for (long t; (t = s.next.fetch_add(s.grain, std::memory_order_relaxed)) < s.tasks;) {
      const long end = std::min(s.tasks, t + s.grain);
      for (long k = t; k < end; ++k) s.invoke(s.body, k, id);
      s.done.fetch_add(end - t, std::memory_order_release);
    }
  }

  static void work(State& s, int id) {
    // The generation at construction, not at thread start: a pool destroyed
    // (or used) before this thread runs must still be noticed.
    std::uint32_t seen = 0;
    for (;;) {
      // Spin a while for the next job (steps follow each other within
      // microseconds), then sleep until one is published.
      std::uint32_t g = s.generation.load();
      for (int spins = 0; (g == seen || (g & 1)) && spins < 50000; ++spins) {
        pause();
        g = s.generation.load();
      }
      if (g == seen || (g & 1)) {
        s.sleepers.fetch_add(1);
        {
          std::unique_lock<std::mutex> lock(s.mutex);
          s.wakeup.wait(lock, [&] { return s.generation.load() != seen; });
        }
        s.sleepers.fetch_sub(1);
        continue;
      }
      if (s.stop.load()) return;
      s.inside.fetch_add(1);
      if (s.generation.load() != g) {  // a new job is being written: retry
        s.inside.fetch_sub(1);
        continue;
      }
      seen = g;
      if (id < s.limit) take_tasks(s, id);
      s.inside.fetch_sub(1);
    }
  }

  std::unique_ptr<State> state_;
  std::vector<std::thread> workers_;
};

// How a step spreads its tasks: a pool (or none: run serially) and how many
// of its threads to use. body(task, participant); participant < threads
// indexes per-thread scratch.
struct Parallel {
  ThreadPool* pool = nullptr;
  int threads = 1;

  // Coarse tasks (convolution rows, pairs, chunks) are claimed one by one,
  // so that two big ones never end up in one claim.
  template <class F>
  void operator()(long tasks, F&& body, long grain = 1) const {
    if (pool && threads > 1)
      pool->run(tasks, threads, body, grain);
    else
      for (long t = 0; t < tasks; ++t) body(t, 0);
  }
  // Many small tasks (rows of element-wise ops), claimed a few at a time.
  template <class F>
  void small_tasks(long tasks, F&& body) const {
    (*this)(tasks, body, 0);
  }
  // Serially when the work is too small to be worth waking anyone.
  Parallel at_least(std::size_t work, std::size_t minimum) const { return work >= minimum ? *this : Parallel{}; }
};

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu
