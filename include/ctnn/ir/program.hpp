// The run-time descriptor of a typed network: a flat list of operations over
// numbered values, with parameter offsets into the model's arena. What each
// op kind means (in place or not, its shape rule, its parameters, what its
// backward pass needs) is in ir/op_traits.hpp; shape inference, validation,
// liveness and fusion over a Program are the other headers of ir/.
//
// The typed layers (layers/, models/) do all checking and shape arithmetic at
// compile time and then *lower* themselves into a Program. Backends never see
// a layer type: they execute (or first compile: fold BatchNorm, fuse epilogues,
// repack weights) a Program. Kernels are therefore instantiated once per
// kernel variant, not once per layer shape, which keeps a ResNet-50 TU cheap.
//
// Conventions every backend relies on:
//  * value 0 is the network input (N x C x H x W, float32, NCHW);
//  * element-wise ops (batch_norm, relu, sigmoid, softmax, dropout, add)
//    have output == input and run in place; `add` adds `residual` into it.
//    The one exception: an element-wise op reading the network input (value
//    0, which belongs to the caller) writes a new value, so a backend copies
//    input to output first whenever output != input;
//  * softmax runs over channels of an N x C x 1 x 1 value, in place;
//  * ops [0, features_end) compute the pooled backbone features (value
//    `features`); the rest is the head, ending in value `output`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ctnn {

enum class OpKind : std::uint8_t {
  conv,             // in_channels -> out_channels, square kernel, stride, zero padding, optional bias
  batch_norm,       // eval: (x - mean) / sqrt(var + eps) * weight + bias, per channel
  relu,
  max_pool,         // square kernel, stride, padding acts as -inf (PyTorch semantics)
  global_avg_pool,  // N x C x H x W -> N x C x 1 x 1
  linear,           // N x in x 1 x 1 -> N x out x 1 x 1, y = W x + b, W is [out, in] row-major
  sigmoid,
  softmax,          // over channels
  dropout,          // identity at inference; training backends use dropout_p
  add,              // output(=input) += residual
  grouped_conv,     // conv with groups > 1: output channel o sees the in/groups input channels of its group
  pad_shortcut,     // CIFAR option A: x[:, :, ::stride, ::stride] with (out - in) / 2 zero channels on each side
};
inline constexpr int op_kind_count = 12;

inline constexpr std::size_t no_param = static_cast<std::size_t>(-1);

struct Op {
  OpKind kind{};
  int input = 0;
  int output = 0;
  int residual = -1;

  int in_channels = 0, out_channels = 0;
  int kernel = 1, stride = 1, padding = 0;
  int groups = 1;           // grouped_conv (> 1, dividing both channel counts); 1 for every other op
  float eps = 1e-5f;        // batch_norm
  double momentum = 0.1;    // batch_norm running statistics; < 0: cumulative average (PyTorch momentum=None)
  double dropout_p = 0.0;

  // Offsets in floats into the parameter arena (no_param when absent).
  // conv: weight [out, in, k, k], bias [out]; linear: weight [out, in], bias [out];
  // batch_norm: weight (gamma), bias (beta), running_mean, running_var, each [C].
  std::size_t weight = no_param, bias = no_param, running_mean = no_param, running_var = no_param;

  std::string name;  // torchvision module path, e.g. "layer2.0.downsample.0"
};

struct Program {
  std::vector<Op> ops;
  int values = 1;       // number of values; value 0 is the input
  int features = 0;     // value holding the pooled backbone features
  int output = 0;       // value holding the network output
  std::size_t features_end = 0;  // ops [0, features_end) produce `features`
  int input_channels = 0;

  int new_value() { return values++; }
};

// Which part of the network a backend runs.
enum class Stage { features, output };

// Largest batch and input size a context is prepared for.
struct Capacity {
  std::size_t batch = 1, height = 224, width = 224;
};

}  // namespace ctnn
