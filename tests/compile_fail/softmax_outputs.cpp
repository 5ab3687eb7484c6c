// Softmax over a single output is constant: a binary head wants Sigmoid.
// COMPILE-FAIL CTNN_FAIL CTNN_SOFTMAX_NEEDS_TWO_OUTPUTS max-errors=2 first-lines=12:softmax_needs_two_outputs<1>
#include <ctnn/core/sequential.hpp>
#include <ctnn/layers/activation.hpp>
#include <ctnn/layers/linear.hpp>

#if defined(CTNN_FAIL)
using Bad = ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Softmax>;
#else
using Good = ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Sigmoid>;
using Good2 = ctnn::Sequential<ctnn::Linear<512, 2>, ctnn::Softmax>;
#endif
