// The head must take as many features as the backbone produces, checked where
// the alias is named. The diagnostic must be short and name both numbers early.
// COMPILE-FAIL CTNN_FAIL_R18 CTNN_HEAD_IN_FEATURES_MISMATCH max-lines=25 max-errors=2 first-lines=12:head_in_features_mismatch<512, 2048>
// COMPILE-FAIL CTNN_FAIL_R50 CTNN_HEAD_IN_FEATURES_MISMATCH max-errors=2 first-lines=12:head_in_features_mismatch<2048, 512>
// COMPILE-FAIL CTNN_FAIL_SEQUENTIAL_HEAD CTNN_HEAD_IN_FEATURES_MISMATCH max-errors=2
#include <ctnn/models/resnet.hpp>
#include <ctnn/layers/dropout.hpp>

#if defined(CTNN_FAIL_R18)
using Bad = ctnn::ResNet18<ctnn::Linear<2048, 10>>;
#elif defined(CTNN_FAIL_R50)
using Bad = ctnn::ResNet50<ctnn::Linear<512, 10>>;
#elif defined(CTNN_FAIL_SEQUENTIAL_HEAD)
using Bad = ctnn::ResNet34<ctnn::Sequential<ctnn::DropoutRatio<1, 5>, ctnn::Linear<256, 10>>>;
#else
using Good18 = ctnn::ResNet18<ctnn::Linear<512, 10>>;
using Good50 = ctnn::ResNet50<ctnn::Linear<2048, 10>>;
using GoodSeq = ctnn::ResNet34<ctnn::Sequential<ctnn::DropoutRatio<1, 5>, ctnn::Linear<512, 10>>>;
static_assert(Good18::parameter_count == 11'181'642);
#endif
