// Within a context's reservation a forward pass allocates nothing: neither
// operator new nor malloc (counted by tests/support/allocation_counter.hpp).
// The CPU backend's own test is tests/cpu/allocations.cpp.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <cstdlib>
#include <vector>

#include "allocation_counter.hpp"

using ctnn_test::count_allocations;

namespace {
template <class Backend, class Net>
void check_forward_allocates_nothing() {
  ctnn::Model<Net, Backend> model(ctnn::Init::torchvision, 1);
  auto ctx = model.make_context({2, 40, 36});
  ctnn::Tensor big(2, 3, 40, 36), small(1, 3, 23, 31);
  for (std::size_t i = 0; i < big.size(); ++i) big.data()[i] = static_cast<float>(i % 17) * 0.1f;
  for (std::size_t i = 0; i < small.size(); ++i) small.data()[i] = static_cast<float>(i % 13) * 0.1f;
  // The counters work: allocating is seen.
  REQUIRE(count_allocations([] {
            static std::vector<float>* volatile sink;
            sink = new std::vector<float>(100);  // operator new calls that escape, so nothing elides them
            delete sink;
          }) >= 2);
#if defined(CTNN_TEST_COUNTS_MALLOC)
  REQUIRE(count_allocations([] {
            void* volatile p = std::malloc(16);
            std::free(p);
          }) >= 1);
#endif
  model.forward(big, ctx);  // warm-up: thread pools start on first use
  const long n = count_allocations([&] {
    model.forward(big, ctx);
    model.features(small, ctx);  // a smaller batch and size within the reservation
    model.forward(small, ctx);
  });
  CHECK(n == 0);
}
}  // namespace

TEST_CASE("reference backend: forward allocates nothing within the context's reservation") {
  check_forward_allocates_nothing<ctnn::backend::Reference, ctnn::ResNet18<ctnn::Linear<512, 10>>>();
}

TEST_CASE("default (CPU) backend: forward allocates nothing within the context's reservation") {
  check_forward_allocates_nothing<ctnn::backend::Default, ctnn::ResNet50<ctnn::Sequential<ctnn::Linear<2048, 1>, ctnn::Sigmoid>>>();
}
