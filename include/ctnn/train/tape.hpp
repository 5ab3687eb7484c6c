// The tape: how a training step runs a range of a Program, decided once and
// shared by every backend's training executor. It says
//  * which buffer each op's output goes to: an element-wise op runs in place
//    only when nothing needs the value it overwrites (not another reader, not
//    a backward pass: BatchNorm keeps its input, ReLU keeps its output);
//  * where gradients go, and the fan-in: a value read by two ops (a residual
//    block's input) receives the first contribution by assignment and the
//    second by accumulation, so no gradient buffer is ever cleared;
//  * which buffers can share memory: activations kept for backward live until
//    their backward step, gradients from their first contribution to their
//    consumer, over one timeline (forward steps, the loss, backward steps).
// It holds no kernel and no backend type: the executors read it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/ir/liveness.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn::train {

inline constexpr int no_value = -1;

// Training mode: BatchNorm uses batch statistics and updates its running ones,
// Dropout drops. Eval mode: running statistics, Dropout is the identity.
enum class Mode { train, eval };

struct TapeOp {
  std::size_t op = 0;     // index into Program::ops
  int in = 0, res = no_value, out = 0;          // activation values (tape numbering)
  int d_in = no_value, d_res = no_value, d_out = no_value;  // gradient values; no_value: not needed
  bool in_place = false;  // out shares in's buffer (and d_in shares d_out's)
  bool accumulate_in = false, accumulate_res = false;  // += into d_in / d_res rather than =
};

struct Tape {
  std::size_t begin = 0, end = 0;     // the Program ops trained
  std::vector<TapeOp> ops;            // one per op of [begin, end), in forward order
  int input = 0;                      // the range's input: tape value 0, owned by the caller
  int output = 0, d_output = 0;       // the range's result and the loss gradient written into it
  std::vector<int> program_value;     // per tape value (activations, then gradients): the value whose extents it has
  std::vector<int> buffer;            // per tape value: its buffer (in-place ops share one), -1 for the input
  SlotPlan slots;                     // per buffer: its slot
  std::size_t values() const { return program_value.size(); }
};

// Plans a training step over ops [begin, end) of `p`; the range must compute
// everything it reads from the value its first op reads.
inline Tape make_tape(const Program& p, std::size_t begin, std::size_t end) {
  if (begin >= end || end > p.ops.size()) throw std::invalid_argument("ctnn: empty training range");
  Tape t;
  t.begin = begin;
  t.end = end;
  const std::size_t n = end - begin;

  // Activations, one tape value per op output, each version of an in-place
  // program value its own tape value.
  std::vector<int> latest(static_cast<std::size_t>(p.values), no_value);
  latest[static_cast<std::size_t>(p.ops[begin].input)] = 0;
  t.program_value.push_back(p.ops[begin].input);
  std::vector<int> producer{-1};                 // per activation: the tape op writing it
  std::vector<std::vector<std::size_t>> readers{{}};  // per activation: tape ops reading it
  const auto read = [&](int program_value, const Op& op) {
    const int v = latest[static_cast<std::size_t>(program_value)];
    if (v == no_value)
      throw std::logic_error("ctnn: training range starting at '" + p.ops[begin].name + "': layer '" + op.name +
                             "' reads a value computed before the range");
    return v;
  };
  for (std::size_t k = 0; k < n; ++k) {
    const Op& op = p.ops[begin + k];
    TapeOp to;
    to.op = begin + k;
    to.in = read(op.input, op);
    readers[static_cast<std::size_t>(to.in)].push_back(k);
    if (op_traits(op.kind).reads_residual) {
      to.res = read(op.residual, op);
      readers[static_cast<std::size_t>(to.res)].push_back(k);
    }
    to.out = static_cast<int>(t.program_value.size());
    t.program_value.push_back(op.output);
    producer.push_back(static_cast<int>(k));
    readers.emplace_back();
    latest[static_cast<std::size_t>(op.output)] = to.out;
    t.ops.push_back(to);
  }
  t.output = t.ops.back().out;

  // In place: the op is element-wise, its input has no other reader, and no
  // backward pass needs the input's content.
  const auto kept_for_backward = [&](int v) {
    const int prod = producer[static_cast<std::size_t>(v)];
    if (prod >= 0 && (op_traits(p.ops[begin + static_cast<std::size_t>(prod)].kind).saves & saves_output)) return true;
    for (std::size_t r : readers[static_cast<std::size_t>(v)])
      if (op_traits(p.ops[begin + r].kind).saves & saves_input) return true;
    return false;
  };
  t.buffer.assign(t.program_value.size(), -1);
  int buffers = 0;
  for (TapeOp& to : t.ops) {
    const Op& op = p.ops[to.op];
    to.in_place = op_traits(op.kind).in_place && to.in != t.input && to.res != to.in &&
                  readers[static_cast<std::size_t>(to.in)].size() == 1 && !kept_for_backward(to.in);
    t.buffer[static_cast<std::size_t>(to.out)] = to.in_place ? t.buffer[static_cast<std::size_t>(to.in)] : buffers++;
  }

  // Gradients: every activation but the range input gets one; in-place ops
  // transform their output's gradient into their input's, in its buffer.
  const int activations = static_cast<int>(t.program_value.size());
  std::vector<int> grad(static_cast<std::size_t>(activations), no_value);
  for (int v = 1; v < activations; ++v) {
    grad[static_cast<std::size_t>(v)] = static_cast<int>(t.program_value.size());
    t.program_value.push_back(t.program_value[static_cast<std::size_t>(v)]);
  }
  t.buffer.resize(t.program_value.size(), -1);
  for (TapeOp& to : t.ops) {
    to.d_out = grad[static_cast<std::size_t>(to.out)];
    to.d_in = grad[static_cast<std::size_t>(to.in)];
    if (to.res != no_value) to.d_res = grad[static_cast<std::size_t>(to.res)];
  }
  t.d_output = grad[static_cast<std::size_t>(t.output)];
  // Backward runs in reverse: the last reader of a value contributes first.
  std::vector<bool> contributed(static_cast<std::size_t>(activations), false);
  for (std::size_t k = n; k-- > 0;) {
    TapeOp& to = t.ops[k];
    if (to.d_in != no_value) {
      to.accumulate_in = contributed[static_cast<std::size_t>(to.in)];
      contributed[static_cast<std::size_t>(to.in)] = true;
    }
    if (to.d_res != no_value) {
      to.accumulate_res = contributed[static_cast<std::size_t>(to.res)];
      contributed[static_cast<std::size_t>(to.res)] = true;
    }
  }
  // Gradient buffers: an in-place op's d_in is its d_out's buffer.
  for (std::size_t k = n; k-- > 0;) {
    TapeOp& to = t.ops[k];
    if (t.buffer[static_cast<std::size_t>(to.d_out)] < 0) t.buffer[static_cast<std::size_t>(to.d_out)] = buffers++;
    if (to.d_in != no_value && to.in_place)
      t.buffer[static_cast<std::size_t>(to.d_in)] = t.buffer[static_cast<std::size_t>(to.d_out)];
  }

  // Lifetimes over forward steps [0, n), the loss at n, backward of op k at
  // 2n - k; then one slot per group of buffers that never overlap.
  const auto fwd = [](std::size_t k) { return k; };
  const auto bwd = [n](std::size_t k) { return 2 * n - k; };
  std::vector<Lifetime> lives(static_cast<std::size_t>(buffers));
  const auto touch = [&](int value, std::size_t step) {
    if (value != no_value && t.buffer[static_cast<std::size_t>(value)] >= 0)
      lives[static_cast<std::size_t>(t.buffer[static_cast<std::size_t>(value)])].touch(step);
  };
  for (std::size_t k = 0; k < n; ++k) {
    const TapeOp& to = t.ops[k];
    const std::uint8_t saves = op_traits(p.ops[to.op].kind).saves;
    touch(to.in, fwd(k));
    touch(to.res, fwd(k));
    touch(to.out, fwd(k));
    if (saves & saves_input) touch(to.in, bwd(k));
    if (saves & saves_output) touch(to.out, bwd(k));
    touch(to.d_out, bwd(k));
    touch(to.d_in, bwd(k));
    touch(to.d_res, bwd(k));
  }
  touch(t.output, n);    // the loss reads the output ...
  touch(t.d_output, n);  // ... and writes its gradient
  t.slots = assign_slots(lives);
  return t;
}

}  // namespace ctnn::train
