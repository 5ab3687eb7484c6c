// Learning-rate schedules, per optimiser step, with torch.optim.lr_scheduler's
// formulas (the closed forms, so that a resumed run gets the same rate):
//
//   Schedule::constant(0.1)
//   Schedule::step(0.1, /*every=*/30 * steps_per_epoch, /*gamma=*/0.1)           StepLR
//   Schedule::cosine(0.1, /*total=*/28 * steps_per_epoch, /*floor=*/0)          CosineAnnealingLR, per step
//   Schedule::one_cycle(0.1, total, /*warm fraction=*/0.3, /*div=*/25, /*final_div=*/1e4)   OneCycleLR (cos)
//   Schedule::cosine(0.1, total).with_warmup(500, /*start_factor=*/0.01)       LinearLR, then the schedule
//
// `at(step)` is the rate of the step-th optimiser step (0-based).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <stdexcept>
#include <string>
#include <utility>

namespace ctnn::train {

class Schedule {
 public:
  Schedule() : Schedule(constant(0.01)) {}

  double at(long step) const { return rate_(step < 0 ? 0 : step); }
  const std::string& description() const { return description_; }

  static Schedule constant(double lr) {
    check_rate(lr);
    return {[lr](long) { return lr; }, "constant " + std::to_string(lr)};
  }

  // lr * gamma^(step / every)
  static Schedule step(double lr, long every, double gamma) {
    check_rate(lr);
    if (every < 1) throw std::invalid_argument("ctnn: a step schedule needs every >= 1, got " + std::to_string(every));
    return {[=](long s) { return lr * std::pow(gamma, static_cast<double>(s / every)); },
            "step x" + std::to_string(gamma) + " every " + std::to_string(every)};
  }

  // floor + (lr - floor) * (1 + cos(pi * step / total)) / 2, and floor after `total` steps.
  static Schedule cosine(double lr, long total, double floor = 0) {
    check_rate(lr);
    if (total < 1) throw std::invalid_argument("ctnn: a cosine schedule needs total >= 1 step");
    return {[=](long s) {
              const double t = static_cast<double>(std::min(s, total)) / static_cast<double>(total);
              return floor + (lr - floor) * (1 + std::cos(std::numbers::pi * t)) / 2;
            },
            "cosine over " + std::to_string(total) + " steps"};
  }

  // PyTorch's OneCycleLR (anneal_strategy='cos', three_phase=False): from
  // max_lr / div up to max_lr over the first `warm` fraction, then down to
  // max_lr / (div * final_div) at the last step.
  static Schedule one_cycle(double max_lr, long total, double warm = 0.3, double div = 25, double final_div = 1e4) {
    check_rate(max_lr);
    if (total < 2 || warm <= 0 || warm >= 1)
      throw std::invalid_argument("ctnn: a one-cycle schedule needs total >= 2 steps and 0 < warm < 1");
    const double initial = max_lr / div, last = initial / final_div;
    const double up_end = warm * static_cast<double>(total) - 1, down_end = static_cast<double>(total) - 1;
    const auto anneal = [](double from, double to, double pct) { return to + (from - to) / 2 * (1 + std::cos(std::numbers::pi * pct)); };
    return {[=](long s) {
              const double t = static_cast<double>(std::min(s, total - 1));
              if (t <= up_end) return anneal(initial, max_lr, up_end > 0 ? t / up_end : 1.0);
              return anneal(max_lr, last, (t - up_end) / (down_end - up_end));
            },
            "one-cycle to " + std::to_string(max_lr) + " over " + std::to_string(total) + " steps"};
  }

  // PyTorch's LinearLR(start_factor, 1, total_iters=steps) chained before
  // this schedule: the factor rises linearly from start_factor to 1 over
  // `steps` steps while the schedule runs on underneath.
  Schedule with_warmup(long steps, double start_factor = 0.0) const {
    if (steps < 0 || start_factor < 0 || start_factor > 1)
      throw std::invalid_argument("ctnn: warm-up needs steps >= 0 and a start factor in [0, 1]");
    return {[=, inner = rate_](long s) {
              const double f = s >= steps ? 1.0
                                          : start_factor + (1 - start_factor) * static_cast<double>(s) /
                                                               static_cast<double>(steps);
              return inner(s) * f;
            },
            description_ + " after " + std::to_string(steps) + " warm-up steps"};
  }

 private:
  Schedule(std::function<double(long)> rate, std::string description)
      : rate_(std::move(rate)), description_(std::move(description)) {}
  static void check_rate(double lr) {
    if (!(lr >= 0) || !std::isfinite(lr))
      throw std::invalid_argument("ctnn: a learning rate must be finite and >= 0, got " + std::to_string(lr));
  }

  std::function<double(long)> rate_;
  std::string description_;
};

}  // namespace ctnn::train
