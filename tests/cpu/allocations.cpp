// A CPU forward pass within its context's capacity allocates nothing: this
// TU replaces operator new and malloc (program-wide, for this executable)
// with versions that count while `counting` is set, and is off otherwise,
// so the other tests in ctnn-test-cpu are unaffected.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include <ctnn/backend/cpu/cpu.hpp>
#include <ctnn/ctnn.hpp>

#include "naive.hpp"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define CTNN_CPU_COUNT_MALLOC 1
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);
#endif

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
void note() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if defined(CTNN_CPU_COUNT_MALLOC)
extern "C" void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t n, std::size_t s) {
  note();
  return __libc_calloc(n, s);
}
extern "C" void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
extern "C" void* aligned_alloc(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
extern "C" int posix_memalign(void** out, std::size_t a, std::size_t n) {
  note();
  *out = __libc_memalign(a, n);
  return *out ? 0 : 12;  // ENOMEM
}
#endif

// g++ 12 cannot see that these operators pair malloc with free.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  note();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  note();
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {
template <class F>
long count_allocations(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations.load();
}
}  // namespace

TEST_CASE("cpu forward allocates nothing within the context's capacity") {
  using namespace ctnn;
  // The counters see allocations at all.
  REQUIRE(count_allocations([] {
            int* volatile p = new int(3);  // volatile: new/delete pairs may be elided
            delete p;
          }) >= 1);
#if defined(CTNN_CPU_COUNT_MALLOC)
  REQUIRE(count_allocations([] {
            void* volatile p = std::malloc(16);
            std::free(p);
          }) >= 1);
#endif

  Model<ResNet18<Sequential<Linear<512, 10>, Softmax>>, backend::Cpu> model(Init::torchvision, 1);
  auto ctx = model.make_context({2, 48, 40});
  const Tensor big = test::random_input({2, 3, 48, 40}, 1), small = test::random_input({1, 3, 27, 33}, 2);
  model.forward(big, ctx);  // the OpenMP thread pool starts on the first parallel region
  const long n = count_allocations([&] {
    model.forward(big, ctx);
    model.features(small, ctx);
    model.forward(small, ctx);
    model.features(big, ctx);
  });
  CHECK(n == 0);

  // Past the capacity the context grows (that may allocate), and then fits.
  const Tensor larger = test::random_input({3, 3, 50, 41}, 3);
  model.forward(larger, ctx);
  CHECK(count_allocations([&] { model.forward(larger, ctx); }) == 0);
}
