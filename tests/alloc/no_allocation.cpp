// Within a context's reservation a forward pass allocates nothing: neither
// operator new nor malloc. This executable replaces both (program-wide) with
// counting versions that are active only while `counting` is set.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);

namespace {
std::atomic<bool> counting{false};
std::atomic<long> news{0}, mallocs{0};
}  // namespace

#if !defined(__SANITIZE_ADDRESS__)
extern "C" void* malloc(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) ++mallocs;
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t n, std::size_t s) {
  if (counting.load(std::memory_order_relaxed)) ++mallocs;
  return __libc_calloc(n, s);
}
extern "C" void* realloc(void* p, std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) ++mallocs;
  return __libc_realloc(p, n);
}
#endif

void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) ++news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (counting.load(std::memory_order_relaxed)) ++news;
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
struct Counted {
  long news, mallocs;
};
template <class F>
Counted count_allocations(F&& f) {
  news = 0;
  mallocs = 0;
  counting = true;
  f();
  counting = false;
  return {news.load(), mallocs.load()};
}

template <class Backend, class Net>
void check_forward_allocates_nothing() {
  ctnn::Model<Net, Backend> model(ctnn::Init::torchvision, 1);
  auto ctx = model.make_context({2, 40, 36});
  ctnn::Tensor big(2, 3, 40, 36), small(1, 3, 23, 31);
  for (std::size_t i = 0; i < big.size(); ++i) big.data()[i] = static_cast<float>(i % 17) * 0.1f;
  for (std::size_t i = 0; i < small.size(); ++i) small.data()[i] = static_cast<float>(i % 13) * 0.1f;
  // The counters work: allocating is seen.
  const Counted probe = count_allocations([] {
    static std::vector<float>* volatile sink;
    sink = new std::vector<float>(100);  // two operator new calls that escape, so nothing elides them
    delete sink;
  });
  REQUIRE(probe.news == 2);
#if !defined(__SANITIZE_ADDRESS__)
  REQUIRE(probe.mallocs >= 1);
#endif
  const Counted c = count_allocations([&] {
    model.forward(big, ctx);
    model.features(small, ctx);  // a smaller batch and size within the reservation
    model.forward(small, ctx);
  });
  CHECK(c.news == 0);
  CHECK(c.mallocs == 0);
}
}  // namespace

TEST_CASE("reference backend: forward allocates nothing within the context's reservation") {
  check_forward_allocates_nothing<ctnn::backend::Reference, ctnn::ResNet18<ctnn::Linear<512, 10>>>();
}
