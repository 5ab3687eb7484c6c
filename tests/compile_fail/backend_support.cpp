// Every layer needs a kernel on the chosen backend; the diagnostic names the
// backend and the op kind.
// COMPILE-FAIL CTNN_FAIL CTNN_BACKEND_CANNOT_RUN max-errors=2 first-lines=12:backend_cannot_run<ConvOnlyBackend, ctnn::OpKind::linear>
#include <ctnn/backend/reference/reference.hpp>
#include <ctnn/core/model.hpp>
#include <ctnn/models/resnet.hpp>

// A backend with convolutions, BatchNorm, ReLU, pooling and adds, but no Linear.
struct ConvOnlyBackend {
  static constexpr std::uint32_t inference_ops = ctnn::all_ops & ~ctnn::op_bit(ctnn::OpKind::linear);
  static constexpr std::uint32_t training_ops = 0;
  using Executor = ctnn::backend::Reference::Executor;
};

#if defined(CTNN_FAIL)
using Bad = ctnn::Model<ctnn::ResNet18<>, ConvOnlyBackend>;
Bad* instantiate = nullptr;
static_assert(sizeof(Bad) > 0);
#else
using Good = ctnn::Model<ctnn::Network<ctnn::Image<3, 8, 8>, ctnn::Conv<3, 4, 3>, ctnn::ReLU>, ConvOnlyBackend>;
static_assert(sizeof(Good) > 0);
#endif
