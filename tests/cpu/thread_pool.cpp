// The CPU backend's worker pool: every task runs exactly once, participants
// stay below the limit, jobs published while workers sleep are seen, and a
// pool can be destroyed before its threads have even started.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "ctnn/backend/cpu/thread_pool.hpp"

using ctnn::backend::cpu::Parallel;
using ctnn::backend::cpu::ThreadPool;

TEST_CASE("cpu thread pool runs every task exactly once, within the participant limit") {
  ThreadPool pool(3);
  CHECK(pool.size() == 3);
  std::vector<std::atomic<int>> hits(64);
  for (int round = 0; round < 20000; ++round) {
    const long tasks = 1 + round * 7919L % 63;
    const int limit = 1 + round % 3;
    for (long t = 0; t < tasks; ++t) hits[static_cast<std::size_t>(t)] = 0;
    std::atomic<int> beyond{0};
    pool.run(
        tasks, limit,
        [&](long t, int participant) {
          hits[static_cast<std::size_t>(t)]++;
          if (participant >= limit) beyond++;
        },
        round % 2 ? 0 : 1);
    bool once = true;
    for (long t = 0; t < tasks; ++t) once = once && hits[static_cast<std::size_t>(t)] == 1;
    REQUIRE(once);
    REQUIRE(beyond == 0);
    if (round % 4000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let the workers sleep
  }
}

TEST_CASE("cpu thread pool: destroyed before use, serial without workers") {
  for (int i = 0; i < 200; ++i) ThreadPool pool(2);  // threads may not have started yet
  ThreadPool one(1);
  long sum = 0;
  one.run(10, 4, [&](long t, int participant) { sum += t + participant; });
  CHECK(sum == 45);
  sum = 0;
  Parallel{}(5, [&](long t, int participant) { sum += t + participant; });
  CHECK(sum == 10);
}
