// The seam between a training executor and data-parallel training: an
// exchange is told when each parameter's gradient is final during backward
// (so it can start reducing it while backward goes on), when backward is
// done (it must leave the averaged gradients in place), and when the
// optimiser has moved the parameters (it may synchronise buffers such as
// BatchNorm's running statistics). Nothing here knows MPI:
// <ctnn/distributed/mpi.hpp> implements it.
#pragma once

#include <cstddef>
#include <span>

namespace ctnn::train {

// Synchronised BatchNorm: the per-channel sums of BatchNorm's training
// forward and backward, summed over the processes in place, so that every
// process normalises with the statistics of the global batch (each process
// contributing the same number of images).
class StatisticsReduction {
 public:
  virtual ~StatisticsReduction() = default;
  virtual void sum(std::span<double> values) = 0;
  virtual std::size_t processes() const = 0;
};

class GradientExchange {
 public:
  virtual ~GradientExchange() = default;
  // Once, when attached: make every process start from the same parameters.
  virtual void start(std::span<float> parameters) = 0;
  // During backward: gradients[offset, offset + size) will not change again this step.
  virtual void gradient_ready(std::span<float> gradients, std::size_t offset, std::size_t size) = 0;
  // After backward: every gradient is final here; on return they are the average over processes.
  virtual void gradients_done(std::span<float> gradients) = 0;
  // After the optimiser step.
  virtual void parameters_updated(std::span<float> parameters) = 0;
  // Non-null: BatchNorm layers in training mode use the global batch's statistics.
  virtual StatisticsReduction* batch_norm_reduction() { return nullptr; }
};

}  // namespace ctnn::train
