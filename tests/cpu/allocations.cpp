// A CPU forward pass within its context's capacity allocates nothing (this TU
// includes the allocation counter for ctnn-test-cpu).
#include <doctest/doctest.h>

#include <cstdlib>

#include <ctnn/backend/cpu/cpu.hpp>
#include <ctnn/ctnn.hpp>

#include "naive.hpp"

#include "allocation_counter.hpp"

using ctnn_test::count_allocations;

TEST_CASE("cpu forward allocates nothing within the context's capacity") {
  using namespace ctnn;
  // The counters see allocations at all.
  REQUIRE(count_allocations([] {
            int* volatile p = new int(3);  // volatile: new/delete pairs may be elided
            delete p;
          }) >= 1);
#if defined(CTNN_TEST_COUNTS_MALLOC)
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
