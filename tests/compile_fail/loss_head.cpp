// The loss must match what the head outputs (softmax or sigmoid applied twice
// trains silently worse in PyTorch).
// COMPILE-FAIL CTNN_FAIL_CE_SOFTMAX CTNN_LOSS_HEAD_MISMATCH max-errors=2 first-lines=12:loss_does_not_match_head<ctnn::Output::softmax_probabilities, ctnn::Output::logits>
// COMPILE-FAIL CTNN_FAIL_BCELOGITS_SIGMOID CTNN_LOSS_HEAD_MISMATCH max-errors=2
// COMPILE-FAIL CTNN_FAIL_BCE_LOGITS CTNN_LOSS_HEAD_MISMATCH max-errors=2
// COMPILE-FAIL CTNN_FAIL_BCE_WIDTH CTNN_BINARY_LOSS_NEEDS_ONE_OUTPUT max-errors=2
#include <ctnn/backend/reference/training.hpp>
#include <ctnn/core/model.hpp>
#include <ctnn/layers/dropout.hpp>
#include <ctnn/models/resnet.hpp>
#include <ctnn/train/trainer.hpp>

using namespace ctnn;
using Softmaxed = ResNet18<Sequential<Linear<512, 10>, DropoutRatio<1, 2>, Softmax>>;
using Binary = ResNet18<Sequential<Linear<512, 1>, Sigmoid>>;
using Logits = ResNet18<Linear<512, 1>>;
using Wide = ResNet18<Linear<512, 3>>;

#if defined(CTNN_FAIL_CE_SOFTMAX)
using Bad = train::Trainer<train::CrossEntropy, Softmaxed, backend::Reference, train::SGD>;
#elif defined(CTNN_FAIL_BCELOGITS_SIGMOID)
using Bad = train::Trainer<train::BCEWithLogits, Binary, backend::Reference, train::SGD>;
#elif defined(CTNN_FAIL_BCE_LOGITS)
using Bad = train::Trainer<train::BCE, Logits, backend::Reference, train::SGD>;
#elif defined(CTNN_FAIL_BCE_WIDTH)
using Bad = train::Trainer<train::BCEWithLogits, Wide, backend::Reference, train::SGD>;
#else
using Good1 = train::Trainer<train::CrossEntropyOnProbabilities, Softmaxed, backend::Reference, train::SGD>;
using Good2 = train::Trainer<train::BCE, Binary, backend::Reference, train::Adam>;
using Good3 = train::Trainer<train::BCEWithLogits, Logits, backend::Reference, train::SGD>;
using Good4 = train::Trainer<train::CrossEntropy, Wide, backend::Reference, train::SGD>;
static_assert(sizeof(Good1) && sizeof(Good2) && sizeof(Good3) && sizeof(Good4));
#endif
#if defined(CTNN_FAIL_CE_SOFTMAX) || defined(CTNN_FAIL_BCELOGITS_SIGMOID) || defined(CTNN_FAIL_BCE_LOGITS) || \
    defined(CTNN_FAIL_BCE_WIDTH)
static_assert(sizeof(Bad) > 0);
#endif
