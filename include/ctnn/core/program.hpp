// The run-time descriptor of a typed network: a flat list of operations over
// numbered values, with parameter offsets into the model's arena.
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
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/core/tensor.hpp"

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
};

inline constexpr std::size_t no_param = static_cast<std::size_t>(-1);

struct Op {
  OpKind kind{};
  int input = 0;
  int output = 0;
  int residual = -1;

  int in_channels = 0, out_channels = 0;
  int kernel = 1, stride = 1, padding = 0;
  float eps = 1e-5f;
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

// Run-time shape inference for one batch size and input size, into `e`
// (one entry per value; allocation-free so forward passes can call it).
// Shared by every backend: the typed layers have already proven the channel
// arithmetic, this resolves dynamic heights and widths. Throws when an input
// is too small, naming the layer.
inline void infer_extents(const Program& p, Extents input, std::span<Extents> e) {
  if (static_cast<int>(input.c) != p.input_channels)
    throw std::invalid_argument("ctnn: input has " + std::to_string(input.c) + " channels, the network expects " +
                                std::to_string(p.input_channels));
  if (e.size() < static_cast<std::size_t>(p.values)) throw std::logic_error("ctnn: extents span too small");
  if (input.n == 0 || input.h == 0 || input.w == 0)
    throw std::invalid_argument("ctnn: empty input " + to_string(input));
  e[0] = input;
  for (const Op& op : p.ops) {
    const Extents in = e[static_cast<std::size_t>(op.input)];
    Extents out = in;
    switch (op.kind) {
      case OpKind::conv:
      case OpKind::max_pool: {
        const long h = (static_cast<long>(in.h) + 2L * op.padding - op.kernel) / op.stride + 1;
        const long w = (static_cast<long>(in.w) + 2L * op.padding - op.kernel) / op.stride + 1;
        if (static_cast<long>(in.h) + 2L * op.padding < op.kernel ||
            static_cast<long>(in.w) + 2L * op.padding < op.kernel || h < 1 || w < 1)
          throw std::invalid_argument("ctnn: input " + std::to_string(input.h) + "x" + std::to_string(input.w) +
                                      " is too small: layer '" + op.name + "' (kernel " +
                                      std::to_string(op.kernel) + ", padding " + std::to_string(op.padding) +
                                      ") receives " + std::to_string(in.h) + "x" + std::to_string(in.w));
        out.h = static_cast<std::size_t>(h);
        out.w = static_cast<std::size_t>(w);
        if (op.kind == OpKind::conv) out.c = static_cast<std::size_t>(op.out_channels);
        break;
      }
      case OpKind::global_avg_pool: out.h = out.w = 1; break;
      case OpKind::linear: out = {in.n, static_cast<std::size_t>(op.out_channels), 1, 1}; break;
      default: break;
    }
    e[static_cast<std::size_t>(op.output)] = out;
  }
}

inline std::vector<Extents> infer_extents(const Program& p, Extents input) {
  std::vector<Extents> e(static_cast<std::size_t>(p.values));
  infer_extents(p, input, e);
  return e;
}

// Which part of the network a backend runs.
enum class Stage { features, output };

// Largest batch and input size a context is prepared for.
struct Capacity {
  std::size_t batch = 1, height = 224, width = 224;
};

}  // namespace ctnn
