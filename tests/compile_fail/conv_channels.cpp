// A convolution's input channels must equal what the previous layer produces;
// likewise a BatchNorm's channel count.
// COMPILE-FAIL CTNN_FAIL CTNN_CONV_CHANNEL_MISMATCH max-errors=2 first-lines=12:conv_in_channels_mismatch<64, 32>
// COMPILE-FAIL CTNN_FAIL_BN CTNN_BATCHNORM_CHANNEL_MISMATCH max-errors=2
#include <ctnn/core/sequential.hpp>
#include <ctnn/layers/batchnorm.hpp>
#include <ctnn/layers/conv.hpp>

#if defined(CTNN_FAIL)
using Bad = ctnn::Sequential<ctnn::Conv<3, 64, 7, 2, 3>, ctnn::Conv<32, 64, 3>>;
#elif defined(CTNN_FAIL_BN)
using Bad = ctnn::Sequential<ctnn::Conv<3, 64, 3>, ctnn::BatchNorm<32>>;
#else
using Good = ctnn::Sequential<ctnn::Conv<3, 64, 7, 2, 3>, ctnn::BatchNorm<64>, ctnn::Conv<64, 64, 3>>;
#endif
