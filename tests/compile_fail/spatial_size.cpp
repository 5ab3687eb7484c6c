// With a fixed input size every window must fit: an unpadded 7x7 conv cannot
// run on a 5x5 image. Linear needs a pooled feature vector.
// COMPILE-FAIL CTNN_FAIL CTNN_SPATIAL_TOO_SMALL max-errors=2 first-lines=12:spatial_size_too_small<5, 5, 7, 0>
// COMPILE-FAIL CTNN_FAIL_LATER CTNN_SPATIAL_TOO_SMALL max-errors=2
// COMPILE-FAIL CTNN_FAIL_LINEAR CTNN_LINEAR_NEEDS_FEATURE_VECTOR max-errors=2
#include <ctnn/core/network.hpp>
#include <ctnn/layers/conv.hpp>
#include <ctnn/layers/linear.hpp>
#include <ctnn/layers/pool.hpp>

using namespace ctnn;
#if defined(CTNN_FAIL)
using Bad = Network<Image<3, 5, 5>, Conv<3, 8, 7>>;
#elif defined(CTNN_FAIL_LATER)
using Bad = Network<Image<3, 12, 12>, Conv<3, 8, 3, 2>, MaxPool<2>, Conv<8, 8, 5>>;  // 12 -> 5 -> 2 < 5
#elif defined(CTNN_FAIL_LINEAR)
using Bad = Network<Image<3, 8, 8>, Conv<3, 4, 3>, Linear<4, 2>>;
#else
using Good = Network<Image<3, 7, 7>, Conv<3, 8, 7>>;
using Padded = Network<Image<3, 5, 5>, Conv<3, 8, 7, 1, 1>, GlobalAvgPool, Linear<8, 2>>;
using AnySize = Network<Image<3, dynamic, dynamic>, Conv<3, 8, 7>>;  // checked at run time instead
static_assert(Good::output_shape() == Shape{8, 1, 1});
#endif
