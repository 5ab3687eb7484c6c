// What a training run reports about each epoch: one record, written as a
// JSON line (a log other tools read) and, for the whole run, the loss and
// accuracy curves as an SVG file any browser opens.
//
// SVG is a few lines of text, so it is written here rather than through a
// plotting library: no dependency for consumers, and the file is stable
// enough to diff.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/io/replace_file.hpp"

namespace ctnn::train {

struct EpochRecord {
  std::size_t epoch = 0;                            // 1-based
  double train_loss = 0, train_accuracy = 0;        // over the epoch's batches, as trained (train mode)
  double val_loss = NAN, val_accuracy = NAN;        // NaN when there is no validation set
  double learning_rate = 0;                         // at the epoch's end
  double seconds = 0, images_per_second = 0;        // the epoch's training time (evaluation excluded), and
                                                    // the images of every process per second
};

namespace detail {
inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace detail

// {"epoch":1,"train_loss":...,...} without a trailing newline.
inline std::string json_line(const EpochRecord& r) {
  using detail::json_number;
  return "{\"epoch\":" + std::to_string(r.epoch) + ",\"train_loss\":" + json_number(r.train_loss) +
         ",\"train_accuracy\":" + json_number(r.train_accuracy) + ",\"val_loss\":" + json_number(r.val_loss) +
         ",\"val_accuracy\":" + json_number(r.val_accuracy) + ",\"lr\":" + json_number(r.learning_rate) +
         ",\"seconds\":" + json_number(r.seconds) + ",\"images_per_second\":" + json_number(r.images_per_second) + "}";
}

namespace detail {
struct Series {
  const char* label;
  const char* colour;
  std::vector<double> values;
};

// One panel: x = epoch, the series' own y range, axes with a few ticks.
inline std::string svg_panel(double x0, double y0, double w, double h, const char* title, std::span<const Series> series,
                             std::size_t epochs, bool percent) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  const double pad = 0.05 * (hi - lo);
  lo -= pad, hi += pad;
  const double left = x0 + 60, right = x0 + w - 10, top = y0 + 30, bottom = y0 + h - 40;
  const auto px = [&](std::size_t i) {
    return epochs <= 1 ? (left + right) / 2 : left + (right - left) * static_cast<double>(i) / static_cast<double>(epochs - 1);
  };
  const auto py = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };
  char buf[256];
  std::string s;
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" text-anchor=\"middle\">%s</text>\n",
                (left + right) / 2, y0 + 18, title);
  s += buf;
  std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
                left, top, right - left, bottom - top);
  s += buf;
  for (int t = 0; t <= 4; ++t) {  // y ticks
    const double v = lo + (hi - lo) * t / 4.0;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.*f%s</text>\n",
                  left, py(v), right, py(v), left - 4, py(v) + 4, percent ? 1 : 3, percent ? 100 * v : v,
                  percent ? "%" : "");
    s += buf;
  }
  const std::size_t step = std::max<std::size_t>(1, (epochs + 9) / 10);
  for (std::size_t i = 0; i < epochs; i += step) {  // x ticks
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%zu</text>\n", px(i),
                  bottom + 16, i + 1);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">epoch</text>\n",
                (left + right) / 2, bottom + 32);
  s += buf;
  double legend_y = top + 16;
  for (const Series& sr : series) {
    std::string points;
    bool any = false;
    for (std::size_t i = 0; i < sr.values.size(); ++i) {
      if (!std::isfinite(sr.values[i])) continue;
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(i), py(sr.values[i]));
      points += buf;
      std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", px(i), py(sr.values[i]),
                    sr.colour);
      s += buf;
      any = true;
    }
    if (!any) continue;
    s += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(sr.colour) + "\" points=\"" + points + "\"/>\n";
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n",
                  right - 120, legend_y - 4, right - 100, legend_y - 4, sr.colour, right - 95, legend_y, sr.label);
    s += buf;
    legend_y += 16;
  }
  return s;
}
}  // namespace detail

// The run's curves, loss on the left and accuracy on the right, as one SVG.
inline std::string curves_svg(std::span<const EpochRecord> records, const std::string& title) {
  using detail::Series;
  Series train_loss{"training", "#1f77b4", {}}, val_loss{"validation", "#d62728", {}};
  Series train_acc{"training", "#1f77b4", {}}, val_acc{"validation", "#d62728", {}};
  for (const EpochRecord& r : records) {
    train_loss.values.push_back(r.train_loss), val_loss.values.push_back(r.val_loss);
    train_acc.values.push_back(r.train_accuracy), val_acc.values.push_back(r.val_accuracy);
  }
  const Series losses[] = {train_loss, val_loss}, accuracies[] = {train_acc, val_acc};
  std::string escaped;
  for (char c : title) escaped += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  std::string s =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"400\" font-family=\"sans-serif\">\n"
      "<rect width=\"960\" height=\"400\" fill=\"white\"/>\n"
      "<text x=\"480\" y=\"20\" font-size=\"16\" text-anchor=\"middle\">" + escaped + "</text>\n";
  s += detail::svg_panel(0, 25, 480, 375, "loss", losses, records.size(), false);
  s += detail::svg_panel(480, 25, 480, 375, "accuracy", accuracies, records.size(), true);
  return s + "</svg>\n";
}

// Replaces the file whole (io/replace_file.hpp): a reader never sees half a log or picture.
inline void write_text_file(const std::filesystem::path& path, const std::string& text) {
  io::replace_file(path, [&](std::ostream& out) { out << text; });
}

}  // namespace ctnn::train
