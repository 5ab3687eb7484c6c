// A printable summary of a network, like print(model) in PyTorch plus the
// numbers PyTorch does not show: every leaf layer with its torchvision name,
// output shape, parameter count and multiply-accumulates at a given input
// size. Shapes, counts and MACs come from the same constexpr shape rules the
// compiler checks with; only the formatting happens at run time.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/network.hpp"

namespace ctnn {

struct LayerRow {
  std::string name;   // torchvision module path
  std::string label;  // PyTorch-style description
  Shape output{};
  std::size_t parameters = 0;
  std::size_t macs = 0;
};

namespace detail {
struct SummaryRows : Visitor<SummaryRows> {
  std::vector<LayerRow> rows;
  int dynamic_extent = 0;

  template <class L>
  void on_leaf(Shape in) {
    Shape out = L::out(in);
    if (out.c == dynamic) out.c = dynamic_extent;
    rows.push_back({joined(), L::label(), out, 0, in.has_fixed_spatial() ? L::macs(in) : 0});
  }
  void on_tensor(const TensorSpec& s) {
    if (is_trainable(s.role) && !rows.empty()) rows.back().parameters += s.elements(dynamic_extent);
  }
};

// 11689512 -> "11,689,512"
inline std::string grouped(std::size_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}
}  // namespace detail

template <NetworkType Net>
std::vector<LayerRow> layer_rows(int height, int width, int dynamic_classes = 0) {
  detail::SummaryRows v;
  v.dynamic_extent = dynamic_classes;
  Net::visit(v, Shape{Net::input::shape.c, height, width});
  if (dynamic_classes == 0)
    for (auto& r : v.rows)
      if (r.output.c == 0) r.output.c = dynamic;
  return v.rows;
}

// The summary as text, at input size height x width.
template <NetworkType Net>
std::string describe(int height, int width, int dynamic_classes = 0) {
  const auto rows = layer_rows<Net>(height, width, dynamic_classes);
  std::string s;
  char line[320];
  std::snprintf(line, sizeof line, "%-28s %-84s %-16s %12s %15s\n", "layer", "type", "output", "params", "MACs");
  s += line;
  std::size_t params = 0, macs = 0;
  for (const auto& r : rows) {
    const std::string c = r.output.c == dynamic ? std::string("?") : std::to_string(r.output.c);
    const std::string shape = "[" + c + ", " + std::to_string(r.output.h) + ", " + std::to_string(r.output.w) + "]";
    std::snprintf(line, sizeof line, "%-28s %-84s %-16s %12s %15s\n", r.name.c_str(), r.label.c_str(), shape.c_str(),
                  detail::grouped(r.parameters).c_str(), detail::grouped(r.macs).c_str());
    s += line;
    params += r.parameters;
    macs += r.macs;
  }
  std::snprintf(line, sizeof line, "total: %s parameters, %.3f GMACs at %dx%d input with %d channels\n",
                detail::grouped(params).c_str(), static_cast<double>(macs) * 1e-9, height, width,
                Net::input::shape.c);
  s += line;
  return s;
}

}  // namespace ctnn
