// Run-time tensors: an owning, 64-byte-aligned float buffer and the NCHW views
// that kernels and the Model API pass around. Shapes in *types* live in
// core/shape.hpp; these carry the run-time sizes (batch, and height/width of
// dynamic inputs).
#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>

namespace ctnn {

inline constexpr std::size_t tensor_alignment = 64;  // one cache line, one zmm register

// Rounds n floats up so that consecutive sub-buffers stay 64-byte aligned.
constexpr std::size_t aligned_floats(std::size_t n) {
  constexpr std::size_t per_line = tensor_alignment / sizeof(float);
  return (n + per_line - 1) / per_line * per_line;
}

namespace detail {
struct aligned_free {
  void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t{tensor_alignment}); }
};
}  // namespace detail

// A zero-initialised, aligned float block. Move-only: parameter arenas and
// workspaces are large, and an accidental copy is a performance bug.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t count) { resize(count); }

  void resize(std::size_t count) {
    if (count == size_) return;
    data_.reset(count ? static_cast<float*>(::operator new[](aligned_floats(count) * sizeof(float),
                                                             std::align_val_t{tensor_alignment}))
                      : nullptr);
    size_ = count;
    if (count) std::memset(data_.get(), 0, aligned_floats(count) * sizeof(float));
  }
  // Grows only; never shrinks, so a reserved workspace is never reallocated.
  void reserve(std::size_t count) {
    if (count > size_) resize(count);
  }

  float* data() noexcept { return data_.get(); }
  const float* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::span<float> span() noexcept { return {data_.get(), size_}; }
  std::span<const float> span() const noexcept { return {data_.get(), size_}; }

 private:
  std::unique_ptr<float[], detail::aligned_free> data_;
  std::size_t size_ = 0;
};

// Four-dimensional NCHW extents. Feature vectors and logits are N x C x 1 x 1.
struct Extents {
  std::size_t n = 0, c = 0, h = 0, w = 0;
  constexpr std::size_t count() const { return n * c * h * w; }
  constexpr std::size_t per_item() const { return c * h * w; }
  friend constexpr bool operator==(const Extents&, const Extents&) = default;
};

inline std::string to_string(const Extents& e) {
  // Appended piecewise: chained operator+ on temporaries trips a false
  // -Wrestrict in g++ 12.
  std::string s = "[";
  for (std::size_t d : {e.n, e.c, e.h, e.w}) {
    if (s.size() > 1) s.append(", ");
    s.append(std::to_string(d));
  }
  s.append("]");
  return s;
}

template <class T>
struct BasicTensorView {
  T* data = nullptr;
  Extents shape{};

  std::size_t size() const { return shape.count(); }
  std::span<T> span() const { return {data, shape.count()}; }
  T& operator()(std::size_t n, std::size_t c, std::size_t h = 0, std::size_t w = 0) const {
    return data[((n * shape.c + c) * shape.h + h) * shape.w + w];
  }
  // The item-th sample as a C*H*W span.
  std::span<T> item(std::size_t n) const { return {data + n * shape.per_item(), shape.per_item()}; }
  operator BasicTensorView<const T>() const { return {data, shape}; }
};

using TensorView = BasicTensorView<float>;
using ConstTensorView = BasicTensorView<const float>;

// An owning NCHW tensor, for inputs and for results that outlive a context.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Extents shape) : shape_(shape), buffer_(shape.count()) {}
  Tensor(std::size_t n, std::size_t c, std::size_t h, std::size_t w) : Tensor(Extents{n, c, h, w}) {}
  static Tensor copy_of(ConstTensorView v) {
    Tensor t(v.shape);
    if (v.size()) std::memcpy(t.data(), v.data, v.size() * sizeof(float));
    return t;
  }

  float* data() { return buffer_.data(); }
  const float* data() const { return buffer_.data(); }
  const Extents& shape() const { return shape_; }
  std::size_t size() const { return shape_.count(); }
  TensorView view() { return {data(), shape_}; }
  ConstTensorView view() const { return {data(), shape_}; }
  operator TensorView() { return view(); }
  operator ConstTensorView() const { return view(); }
  float& operator()(std::size_t n, std::size_t c, std::size_t h = 0, std::size_t w = 0) { return view()(n, c, h, w); }
  float operator()(std::size_t n, std::size_t c, std::size_t h = 0, std::size_t w = 0) const {
    return view()(n, c, h, w);
  }

 private:
  Extents shape_{};
  AlignedBuffer buffer_;
};

}  // namespace ctnn
