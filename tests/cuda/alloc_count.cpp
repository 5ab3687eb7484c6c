// Counts global operator new calls while enabled, for the allocation-free
// forward pass test in runtime.cu. A replacement operator new has to live in
// a host-compiled file: nvcc treats it as usable from device code.
#include <atomic>
#include <cstdlib>
#include <new>

namespace ctnn::cuda_test {
namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace
void start_counting_allocations() {
  allocations = 0;
  counting = true;
}
long stop_counting_allocations() {
  counting = false;
  return allocations.load();
}
}  // namespace ctnn::cuda_test

void* operator new(std::size_t n) {
  if (ctnn::cuda_test::counting.load(std::memory_order_relaxed))
    ctnn::cuda_test::allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
