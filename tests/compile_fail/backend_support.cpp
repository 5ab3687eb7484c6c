// Every layer needs a kernel on the chosen backend.
// COMPILE-FAIL CTNN_FAIL CTNN_BACKEND_CANNOT_RUN max-errors=2
#include <ctnn/backend/reference/reference.hpp>
#include <ctnn/core/model.hpp>
#include <ctnn/models/resnet.hpp>

// A backend with convolutions, BatchNorm, ReLU, pooling and adds, but no Linear.
struct ConvOnlyBackend {
  static constexpr std::uint32_t supported_ops = ~ctnn::op_bit(ctnn::OpKind::linear);
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
