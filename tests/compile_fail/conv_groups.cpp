// A grouped convolution needs both channel counts divisible by its groups.
// COMPILE-FAIL CTNN_FAIL CTNN_CONV_GROUPS max-errors=1 first-lines=8:conv_groups_do_not_divide<64, 128, 3>
#include <ctnn/layers/conv.hpp>

#if defined(CTNN_FAIL)
using Bad = ctnn::Conv<64, 128, 3, 1, 1, false, 3>;
static_assert(sizeof(Bad) > 0);
#else
using Good = ctnn::Conv<64, 128, 3, 1, 1, false, 32>;  // 2 inputs and 4 outputs per group
static_assert(Good::ops == ctnn::op_bit(ctnn::OpKind::grouped_conv));
#endif
