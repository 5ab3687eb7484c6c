// The compile-time contract, by example. Built as is, this program states the
// facts the compiler proves about the article's three heads and prints them.
// Each macro below switches on one mistake that PyTorch reports at run time
// (or never); with it the file must fail to compile with the rule's token,
// and ctest checks that it does, with g++ and clang. Try one:
//
//   g++ -std=c++20 -fsyntax-only -Iinclude -DCTNN_SHOW_WRONG_HEAD examples/shape_check.cpp
//
// COMPILE-FAIL CTNN_SHOW_WRONG_HEAD CTNN_HEAD_IN_FEATURES_MISMATCH max-errors=1 first-lines=8:head_in_features_mismatch<512,.2048>
// COMPILE-FAIL CTNN_SHOW_WRONG_HEAD_R50 CTNN_HEAD_IN_FEATURES_MISMATCH max-errors=1 first-lines=8:head_in_features_mismatch<2048,.512>
// COMPILE-FAIL CTNN_SHOW_SEQUENTIAL_LINK CTNN_LINEAR_IN_FEATURES_MISMATCH max-errors=1 first-lines=8:linear_in_features_mismatch<128,.64>
// COMPILE-FAIL CTNN_SHOW_SOFTMAX_1 CTNN_SOFTMAX_NEEDS_TWO_OUTPUTS max-errors=1 first-lines=8:softmax_needs_two_outputs<1>
// COMPILE-FAIL CTNN_SHOW_CONV_CHANNELS CTNN_CONV_CHANNEL_MISMATCH max-errors=1 first-lines=8:conv_in_channels_mismatch<64,.32>
// COMPILE-FAIL CTNN_SHOW_BATCHNORM_CHANNELS CTNN_BATCHNORM_CHANNEL_MISMATCH max-errors=1
// COMPILE-FAIL CTNN_SHOW_SPATIAL CTNN_SPATIAL_TOO_SMALL max-errors=1 first-lines=8:spatial_size_too_small<5,.5,.7,.0>
// COMPILE-FAIL CTNN_SHOW_LINEAR_ON_MAP CTNN_LINEAR_NEEDS_FEATURE_VECTOR max-errors=1
// COMPILE-FAIL CTNN_SHOW_DROPOUT CTNN_DROPOUT_PROBABILITY max-errors=1
// COMPILE-FAIL CTNN_SHOW_BACKEND CTNN_BACKEND_CANNOT_RUN max-errors=1 first-lines=8:backend_cannot_run<NoSoftmax, ctnn::OpKind::softmax>
// COMPILE-FAIL CTNN_SHOW_TRAINING_BACKEND CTNN_BACKEND_CANNOT_RUN max-errors=1 first-lines=8:backend_cannot_train<InferenceOnly, ctnn::OpKind::conv>
#include <cstdio>

#include <ctnn/ctnn.hpp>

using namespace ctnn;

// clang before 18 has no floating-point template arguments: the integer
// spelling DropoutRatio<1, 2> is the same layer as Dropout<0.5>.
#if defined(__clang__) && __clang_major__ < 18
using HalfDropout = DropoutRatio<1, 2>;
#else
using HalfDropout = Dropout<0.5>;
#endif

// ---- what compiles: the article's three heads -------------------------------------------
using TenClasses = ResNet18<Linear<512, 10>>;                                    // model.fc = nn.Linear(512, 10)
using Binary = ResNet18<Sequential<Linear<512, 1>, Sigmoid>>;                     // + nn.Sigmoid()
using Regularised = ResNet18<Sequential<Linear<512, 1000>, HalfDropout, Softmax>>;  // + Dropout(0.5), Softmax(dim=1)
using Fashion = ResNet20<Linear<64, 10>, Image<1, 28, 28>>;                       // fixed-size input

static_assert(TenClasses::parameter_count == 11'181'642);  // torchvision: resnet18(num_classes=10)
static_assert(Binary::parameter_count == 11'177'025);
static_assert(Regularised::parameter_count == 11'689'512);  // the same count as the 1000-class original
static_assert(TenClasses::output_shape() == Shape{10, 1, 1});
static_assert(Fashion::output_shape() == Shape{10, 1, 1});
static_assert(ResNet50<Linear<2048, 10>>::features == 2048);

// ---- what does not: one mistake per macro -----------------------------------------------
#ifdef CTNN_SHOW_WRONG_HEAD
// The head written for ResNet-50's 2048 features, put on ResNet-18 (512).
using Bad = ResNet18<Linear<2048, 10>>;
#endif
#ifdef CTNN_SHOW_WRONG_HEAD_R50
// ...and the ResNet-18 head copied onto ResNet-50.
using Bad = ResNet50<Linear<512, 10>>;
#endif
#ifdef CTNN_SHOW_SEQUENTIAL_LINK
// A hidden layer of 128 followed by a layer that expects 64.
using Bad = Sequential<Linear<512, 128>, Linear<64, 10>>;
#endif
#ifdef CTNN_SHOW_SOFTMAX_1
// Softmax over one output is the constant 1: a binary head wants Sigmoid.
using Bad = ResNet18<Sequential<Linear<512, 1>, Softmax>>;
#endif
#ifdef CTNN_SHOW_CONV_CHANNELS
// The stem produces 64 channels; the next conv was written for 32.
using Bad = Sequential<Conv<3, 64, 7, 2, 3>, Conv<32, 64, 3>>;
#endif
#ifdef CTNN_SHOW_BATCHNORM_CHANNELS
using Bad = Sequential<Conv<3, 64, 3, 1, 1>, BatchNorm<32>>;
#endif
#ifdef CTNN_SHOW_SPATIAL
// With a fixed input size the compiler knows a 7x7 window cannot fit 5x5.
using Bad = Network<Image<3, 5, 5>, Conv<3, 8, 7>>;
#endif
#ifdef CTNN_SHOW_LINEAR_ON_MAP
// Linear straight after a conv: the 6x6 feature map was never pooled.
using Bad = Network<Image<3, 8, 8>, Conv<3, 4, 3>, Linear<4, 10>>;
#endif
#ifdef CTNN_SHOW_DROPOUT
#if defined(__clang__) && __clang_major__ < 18
using Bad = DropoutRatio<1, 1>;
#else
using Bad = Dropout<1.0>;  // p = 1 drops everything
#endif
[[maybe_unused]] constexpr double p = Bad::p;
#endif
#ifdef CTNN_SHOW_BACKEND
// A backend without a Softmax kernel cannot run the regularised head.
struct NoSoftmax : backend::Reference {
  static constexpr std::uint32_t inference_ops = all_ops & ~op_bit(OpKind::softmax);
};
[[maybe_unused]] void make_model() { Model<Regularised, NoSoftmax> model; }
#endif
#ifdef CTNN_SHOW_TRAINING_BACKEND
// A backend that runs inference only (as the CUDA backend does today) cannot train.
struct InferenceOnly : backend::Reference {
  static constexpr std::uint32_t training_ops = 0;
};
using Trainer = train::Trainer<train::CrossEntropy, ResNet18<Linear<512, 10>>, InferenceOnly, train::SGD>;
[[maybe_unused]] constexpr std::size_t size = sizeof(Trainer);
#endif

template <class Net>
void show(const char* pytorch, const char* ctnn_type) {
  const Shape out = Net::output_shape();
  std::printf("%s\n  %s: %zu parameters, output [%d, %d, %d], %.2f GMACs at 224x224\n", pytorch, ctnn_type,
              Net::parameter_count, out.c, out.h, out.w, static_cast<double>(macs<Net>(224, 224)) * 1e-9);
}

int main() {
  std::printf("Checked by the compiler (see the COMPILE-FAIL lines of this file for what is refused):\n\n");
  show<TenClasses>("model.fc = nn.Linear(512, 10)", "ResNet18<Linear<512, 10>>");
  show<Binary>("model.fc = nn.Sequential(nn.Linear(512, 1), nn.Sigmoid())", "ResNet18<Sequential<Linear<512, 1>, Sigmoid>>");
  show<Regularised>("model.fc = nn.Sequential(nn.Linear(512, 1000), nn.Dropout(0.5), nn.Softmax(dim=1))",
                    "ResNet18<Sequential<Linear<512, 1000>, Dropout<0.5>, Softmax>>");
  std::printf("\nFixed input size: ResNet20<Linear<64, 10>, Image<1, 28, 28>> has %zu parameters and %.1f MMACs.\n",
              Fashion::parameter_count, static_cast<double>(macs<Fashion>(28, 28)) * 1e-6);
  return 0;
}
