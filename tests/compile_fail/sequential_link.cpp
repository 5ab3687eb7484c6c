// Consecutive Linear layers must agree on the feature width.
// COMPILE-FAIL CTNN_FAIL CTNN_LINEAR_IN_FEATURES_MISMATCH max-errors=2 first-lines=12:linear_in_features_mismatch<128, 64>
#include <ctnn/core/sequential.hpp>
#include <ctnn/layers/activation.hpp>
#include <ctnn/layers/linear.hpp>

#if defined(CTNN_FAIL)
using Bad = ctnn::Sequential<ctnn::Linear<512, 128>, ctnn::ReLU, ctnn::Linear<64, 10>>;
#else
using Good = ctnn::Sequential<ctnn::Linear<512, 128>, ctnn::ReLU, ctnn::Linear<128, 10>>;
#endif
