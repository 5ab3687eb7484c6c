#include "sim.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

namespace ctnn::cuda::sim {

namespace {
thread_local std::barrier<>* current_barrier = nullptr;
thread_local int current_lane = 0;  // outside a simulated block: lane 0
std::atomic<long> inexact_tf32_count{0};
}

void note_inexact_tf32() { inexact_tf32_count.fetch_add(1, std::memory_order_relaxed); }
long inexact_tf32_seen() { return inexact_tf32_count.load(); }

int lane() { return current_lane; }

void block_sync() {
  if (!current_barrier) throw std::logic_error("block_sync outside a simulated block");
  current_barrier->arrive_and_wait();
}

namespace {
// Host threads kept across blocks of the same size: starting 256 threads per
// simulated block dominated the simulator's run time.
class BlockThreads {
 public:
  explicit BlockThreads(int threads) : block_(threads), start_(threads + 1), done_(threads + 1) {
    for (int t = 0; t < threads; ++t)
      workers_.emplace_back([this, t] {
        current_barrier = &block_;
        current_lane = t % 32;
        for (;;) {
          start_.arrive_and_wait();
          if (stop_) return;
          (*job_)(t);
          done_.arrive_and_wait();
        }
      });
  }
  ~BlockThreads() {
    stop_ = true;
    start_.arrive_and_wait();
  }
  void run(const std::function<void(int)>& fn) {
    job_ = &fn;
    start_.arrive_and_wait();
    done_.arrive_and_wait();
  }

 private:
  std::barrier<> block_, start_, done_;
  const std::function<void(int)>* job_ = nullptr;
  bool stop_ = false;
  std::vector<std::jthread> workers_;  // last: joined before the barriers go
};
}  // namespace

void run_block(int threads, const std::function<void(int)>& fn) {
  static std::mutex guard;
  static std::map<int, std::unique_ptr<BlockThreads>> pools;
  std::lock_guard lock(guard);
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<BlockThreads>(threads);
  pool->run(fn);
}

SimResult run_plan(const Plan& plan, const Program& program, std::span<const float> input, Extents shape,
                   Stage stage, Precision precision, int sm_count, bool legacy_tiles) {
  inexact_tf32_count = 0;
  Plan rounded = plan;
  round_weights(rounded, precision);
  const std::vector<float>& arena = rounded.arena;
  std::vector<Extents> e = infer_extents(program, shape);
  std::vector<std::size_t> sizes = slot_sizes(plan, e);
  std::vector<std::vector<float>> slots(sizes.size());
  std::vector<float*> slot_ptr(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    // Poison: a kernel reading memory nobody wrote shows up as NaN.
    slots[i].assign(sizes[i], std::numeric_limits<float>::quiet_NaN());
    slot_ptr[i] = slots[i].data();
  }
  std::vector<float> partial(split_workspace_floats(sm_count), std::numeric_limits<float>::quiet_NaN());
  DeviceState d;
  d.arena = arena.data();
  d.slots = slot_ptr.data();
  d.partial = partial.data();
  d.partial_floats = partial.size();
  d.raw_input = input.data();
  d.sm_count = sm_count;
  d.legacy_tiles = legacy_tiles;
  HostLauncher launch;
  launch.precision = precision;
  const std::size_t end = stage == Stage::features ? plan.features_steps : plan.steps.size();
  enqueue_steps(plan, e, d, end, launch);

  const int v = stage == Stage::features ? plan.features : plan.output;
  const Extents out = e[static_cast<std::size_t>(v)];
  SimResult r;
  r.shape = out;
  r.data.resize(out.count());
  LayoutArgs a{value_ptr(plan, d, v), r.data.data(), static_cast<int>(out.n), static_cast<int>(out.c),
               static_cast<int>(out.h), static_cast<int>(out.w), stored_channels(static_cast<int>(out.c))};
  for (long i = 0; i < static_cast<long>(out.count()); ++i) to_nchw_item(a, i);
  r.conv_launches = launch.conv_launches;
  r.split_launches = launch.split_launches;
  for (int i = 0; i < 3; ++i) r.config_launches[i] = launch.config_launches[i];
  r.legacy_launches = launch.legacy_launches;
  r.tuned_launches = launch.tuned_launches;
  r.inexact_tf32 = inexact_tf32_count.load();
  return r;
}

}  // namespace ctnn::cuda::sim
