// Buffer planning by liveness, shared by every executor (inference and
// training): values whose lifetimes do not overlap share one buffer
// ("slot"), so ResNet-50 needs a handful of activation buffers rather than
// one per layer. A lifetime is a closed interval of step indices; a value
// born at step s never takes a slot freed at s, so a step's output never
// aliases the inputs it is still reading.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

namespace ctnn {

struct Lifetime {
  static constexpr std::size_t never = static_cast<std::size_t>(-1);
  std::size_t birth = never, death = 0;  // birth == never: the value needs no buffer

  void touch(std::size_t step) {
    birth = birth == never ? step : std::min(birth, step);
    death = std::max(death, step);
  }
  void keep_until(std::size_t step) {
    if (birth != never) death = std::max(death, step);
  }
};

struct SlotPlan {
  std::vector<int> slot_of;  // per value; -1: no buffer
  int slots = 0;
};

inline SlotPlan assign_slots(std::span<const Lifetime> lives) {
  SlotPlan plan;
  plan.slot_of.assign(lives.size(), -1);
  // Values in order of birth (ties by id): a counting sort over the steps.
  std::size_t steps = 0;
  for (const Lifetime& l : lives)
    if (l.birth != Lifetime::never) steps = std::max(steps, l.birth + 1);
  std::vector<std::size_t> first(steps + 1, 0), order;
  for (const Lifetime& l : lives)
    if (l.birth != Lifetime::never) ++first[l.birth + 1];
  for (std::size_t s = 0; s < steps; ++s) first[s + 1] += first[s];
  order.resize(first[steps]);
  for (std::size_t v = 0; v < lives.size(); ++v)
    if (lives[v].birth != Lifetime::never) order[first[lives[v].birth]++] = v;
  std::vector<std::size_t> active;  // values holding a slot
  std::vector<int> free_slots;
  for (std::size_t v : order) {
    if (lives[v].birth == Lifetime::never) continue;
    for (std::size_t k = 0; k < active.size();) {
      if (lives[active[k]].death < lives[v].birth) {
        free_slots.push_back(plan.slot_of[active[k]]);
        active[k] = active.back();
        active.pop_back();
      } else {
        ++k;
      }
    }
    if (free_slots.empty()) {
      plan.slot_of[v] = plan.slots++;
    } else {
      plan.slot_of[v] = free_slots.back();
      free_slots.pop_back();
    }
    active.push_back(v);
  }
  return plan;
}

}  // namespace ctnn
