// Compile-time shapes. Channel counts are always known to the compiler;
// heights and widths are either fixed or `dynamic` (resolved per call).
#pragma once

#include <cstddef>

namespace ctnn {

// A dimension whose value is known only at run time: input heights and widths,
// and the class count of a `Linear<In, dynamic>` head. Also used while
// checking a Sequential on its own, before its input is known.
inline constexpr int dynamic = -1;

struct Shape {
  int c = dynamic, h = dynamic, w = dynamic;

  constexpr bool has_fixed_spatial() const { return h != dynamic && w != dynamic; }
  friend constexpr bool operator==(const Shape&, const Shape&) = default;
};

// The input of a network: Image<3, 224, 224>, or Image<3, dynamic, dynamic>.
template <int C, int H = dynamic, int W = dynamic>
struct Image {
  static_assert(C > 0, "CTNN_BAD_IMAGE: an Image needs at least one channel");
  static_assert((H > 0 || H == dynamic) && (W > 0 || W == dynamic),
                "CTNN_BAD_IMAGE: Image height and width are positive or ctnn::dynamic");
  static constexpr Shape shape{C, H, W};
};

namespace detail {
// Output extent of a window op (conv, pooling) along one axis; dynamic stays
// dynamic. May return a value < 1, which the spatial check turns into an error.
constexpr int window_out(int in, int kernel, int stride, int padding) {
  if (in == dynamic) return dynamic;
  const int span = in + 2 * padding - kernel;
  return span < 0 ? 0 : span / stride + 1;
}
}  // namespace detail

}  // namespace ctnn
