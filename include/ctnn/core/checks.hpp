// The compile-time contract. Each rule is a class template whose template
// arguments carry the numbers involved, so the first lines of a g++/clang
// diagnostic read e.g. "In instantiation of 'struct
// ctnn::check::head_in_features_mismatch<512, 2048>'" followed by the rule's
// ALL-CAPS token. A rule is instantiated only where it can fail, and the
// caller carries on with a valid placeholder, so a bad network yields one
// error rather than a cascade. docs/compile-time-contract.md lists the tokens.
#pragma once

#include <cstdint>

namespace ctnn::check {

// The head's first layer must take as many features as the backbone produces.
template <int BackboneFeatures, int HeadInFeatures>
struct head_in_features_mismatch {
  static_assert(BackboneFeatures == HeadInFeatures,
                "CTNN_HEAD_IN_FEATURES_MISMATCH: the head's input width (second number) must equal the "
                "backbone's feature count (first number); e.g. ResNet18/34 give 512, ResNet50/101/152 give 2048");
  static constexpr bool value = true;
};

// Consecutive layers must agree on the feature width (Linear after Linear, ...).
template <int Produced, int Expected>
struct linear_in_features_mismatch {
  static_assert(Produced == Expected,
                "CTNN_LINEAR_IN_FEATURES_MISMATCH: the previous layer produces the first number of features, "
                "this Linear expects the second");
  static constexpr bool value = true;
};

// A convolution's input channels must equal what the previous layer produces.
template <int Produced, int Expected>
struct conv_in_channels_mismatch {
  static_assert(Produced == Expected,
                "CTNN_CONV_CHANNEL_MISMATCH: the previous layer produces the first number of channels, this "
                "convolution (or residual block) expects the second");
  static constexpr bool value = true;
};

// A grouped convolution splits both channel counts into Groups equal parts.
template <int InChannels, int OutChannels, int Groups>
struct conv_groups_do_not_divide {
  static_assert(Groups >= 1 && InChannels % Groups == 0 && OutChannels % Groups == 0,
                "CTNN_CONV_GROUPS: a grouped convolution needs its input channels (first number) and output "
                "channels (second) to be divisible by its groups (third)");
  static constexpr bool value = true;
};

template <int Produced, int Expected>
struct batchnorm_channels_mismatch {
  static_assert(Produced == Expected,
                "CTNN_BATCHNORM_CHANNEL_MISMATCH: the previous layer produces the first number of channels, "
                "this BatchNorm normalises the second");
  static constexpr bool value = true;
};

// With a fixed input size, every window (conv, pooling) must fit: H + 2*pad >= kernel.
template <int InHeight, int InWidth, int Kernel, int Padding>
struct spatial_size_too_small {
  static_assert(InHeight + 2 * Padding >= Kernel && InWidth + 2 * Padding >= Kernel,
                "CTNN_SPATIAL_TOO_SMALL: the layer receives InHeight x InWidth (first two numbers), smaller than "
                "its kernel (third) even with its padding (fourth); use a larger input or padding");
  static constexpr bool value = true;
};

// Softmax over a single output is the constant 1; a 1-wide head wants Sigmoid.
template <int Outputs>
struct softmax_needs_two_outputs {
  static_assert(Outputs >= 2,
                "CTNN_SOFTMAX_NEEDS_TWO_OUTPUTS: Softmax over fewer than 2 outputs is constant; use Sigmoid for "
                "a binary head");
  static constexpr bool value = true;
};

// Dropout<P> drops with probability P, which must lie in [0, 1).
template <auto Probability>
struct dropout_probability_out_of_range {
  static_assert(Probability >= 0 && Probability < 1,
                "CTNN_DROPOUT_PROBABILITY: a dropout probability must lie in [0, 1)");
  static constexpr bool value = true;
};

// The integer spelling DropoutRatio<Numerator, Denominator>, for compilers
// without floating-point template arguments (clang before 18).
template <long Numerator, long Denominator>
struct dropout_ratio_out_of_range {
  static_assert(Numerator >= 0 && Denominator > 0 && Numerator < Denominator,
                "CTNN_DROPOUT_PROBABILITY: a dropout probability Numerator/Denominator must lie in [0, 1)");
  static constexpr bool value = true;
};

// Linear layers take feature vectors (C x 1 x 1): put GlobalAvgPool before them.
template <int Height, int Width>
struct linear_needs_feature_vector {
  static_assert(Height == 1 && Width == 1,
                "CTNN_LINEAR_NEEDS_FEATURE_VECTOR: Linear takes a C x 1 x 1 feature vector but receives the "
                "spatial size given by the numbers; add GlobalAvgPool before it");
  static constexpr bool value = true;
};

// Every op of the network needs a kernel on the chosen backend, for
// inference (backend_cannot_run) and, where the model is trained, for
// training (backend_cannot_train). The arguments name the backend and the
// op kind, e.g. backend_cannot_run<ctnn::backend::CudaT<...>, ctnn::OpKind::conv>.
template <class Backend, auto Op>
struct backend_cannot_run {
  static_assert(sizeof(Backend) == 0,
                "CTNN_BACKEND_CANNOT_RUN: this backend (first argument) has no inference kernel for this op kind "
                "(second argument); choose another backend or another layer");
  static constexpr bool value = true;
};
template <class Backend, auto Op>
struct backend_cannot_train {
  static_assert(sizeof(Backend) == 0,
                "CTNN_BACKEND_CANNOT_RUN: this backend (first argument) has no training kernels for this op kind "
                "(second argument); train on another backend (e.g. backend::Reference or backend::Cpu)");
  static constexpr bool value = true;
};

// The loss must match what the head outputs: the first argument is what the
// network's output means (ctnn::Output), the second what the loss expects.
template <auto HeadOutput, auto LossExpects>
struct loss_does_not_match_head {
  static_assert(sizeof(decltype(HeadOutput)) == 0,
                "CTNN_LOSS_HEAD_MISMATCH: CrossEntropy and BCEWithLogits take logits (a head without Softmax or "
                "Sigmoid: the loss applies it), BCE takes a Sigmoid head, CrossEntropyOnProbabilities a Softmax "
                "head; applying the activation twice trains silently worse");
  static constexpr bool value = true;
};

// BCE / BCEWithLogits score one probability per image.
template <int Outputs>
struct binary_loss_needs_one_output {
  static_assert(Outputs == 1 || Outputs == -1,
                "CTNN_BINARY_LOSS_NEEDS_ONE_OUTPUT: BCE and BCEWithLogits expect a 1-wide head");
  static constexpr bool value = true;
};

}  // namespace ctnn::check
