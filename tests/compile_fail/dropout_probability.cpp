// A dropout probability must lie in [0, 1). Compilers without floating-point
// template arguments (clang before 18) use the integer spelling.
// COMPILE-FAIL CTNN_FAIL CTNN_DROPOUT_PROBABILITY max-errors=2
// COMPILE-FAIL CTNN_FAIL_RATIO CTNN_DROPOUT_PROBABILITY max-errors=2
#include <ctnn/core/sequential.hpp>
#include <ctnn/layers/activation.hpp>
#include <ctnn/layers/dropout.hpp>
#include <ctnn/layers/linear.hpp>

#if defined(__clang__) && __clang_major__ < 18
#define CTNN_NO_FLOAT_NTTP 1
#endif

#if defined(CTNN_FAIL) && !defined(CTNN_NO_FLOAT_NTTP)
using Bad = ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::Dropout<1.0f>, ctnn::Softmax>;
#elif defined(CTNN_FAIL) || defined(CTNN_FAIL_RATIO)
using Bad = ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::DropoutRatio<3, 2>, ctnn::Softmax>;
#else
using GoodRatio = ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::DropoutRatio<1, 2>, ctnn::Softmax>;
#if !defined(CTNN_NO_FLOAT_NTTP)
using Good = ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::Dropout<0.5>, ctnn::Softmax>;
using GoodF = ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::Dropout<0.5f>, ctnn::Softmax>;
static_assert(ctnn::Dropout<0.5>::p == 0.5 && ctnn::Dropout<0.2f>::p > 0.19);
#endif
#endif
