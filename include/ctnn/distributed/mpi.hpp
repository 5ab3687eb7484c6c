// Data-parallel training over MPI (target ctnn::mpi; Open MPI or MPICH).
//
//   ctnn::distributed::Mpi mpi(argc, argv);                  // MPI_Init / MPI_Finalize
//   ctnn::distributed::DataParallel dp(mpi.world(), model.program());
//   dp.check_same_configuration({{"network", "resnet20"}, {"batch", "64"}, ...});
//   trainer.set_exchange(&dp);                               // rank 0's parameters everywhere
//   data::Batches batches(train, 64, seed, {..., .shard = mpi.rank(), .shards = mpi.size()});
//   train::fit(trainer, batches, &test_shard, dp.fit_options(options));
//
// What one step does: backward hands each op's parameter gradients to the
// exchange as soon as they are final; they are packed into buckets of about
// `bucket_bytes`, and each full bucket is summed across processes with a
// non-blocking MPI_Iallreduce while backward goes on. After backward the
// last bucket is sent, all are waited for and unpacked as averages, and the
// optimiser runs on identical gradients everywhere. After the step,
// BatchNorm's running statistics are broadcast from rank 0 (PyTorch DDP's
// broadcast_buffers), so every process holds the same model. Batch
// statistics are per process (DDP's default), or with `sync_batch_norm`
// those of the global batch (SyncBatchNorm: the per-channel sums of
// forward and backward allreduced, three small reductions per layer).
//
// Parameters are checked identical across processes after every step when
// `verify` is on (the default in builds without NDEBUG): a 64-bit checksum,
// compared with one MPI_Allreduce.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/train/exchange.hpp"
#include "ctnn/train/fit.hpp"

namespace ctnn::distributed {

class MpiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw MpiError(std::string("ctnn: ") + what + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}
}  // namespace detail

// MPI for the life of this object. Errors are returned (and thrown as
// MpiError) rather than aborting inside MPI, so a program reports what
// failed; abort() then stops every process of the job.
class Mpi {
 public:
  Mpi(int& argc, char**& argv) {
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      int provided = 0;
      detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owner_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  Mpi(const Mpi&) = delete;
  Mpi& operator=(const Mpi&) = delete;
  ~Mpi() {
    if (owner_) MPI_Finalize();
  }

  MPI_Comm world() const { return MPI_COMM_WORLD; }
  std::size_t rank() const { return static_cast<std::size_t>(rank_); }
  std::size_t size() const { return static_cast<std::size_t>(size_); }
  // Ends every process of the job with `code` (after this one reported its error).
  [[noreturn]] void abort(int code) const {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owner_ = false;
};

class DataParallel final : public train::GradientExchange {
 public:
  struct Options {
    std::size_t bucket_bytes = std::size_t{1} << 20;  // gradients per MPI_Iallreduce
    bool sync_batch_norm = false;                     // BatchNorm over the global batch
  };

  DataParallel(MPI_Comm comm, const Program& program) : DataParallel(comm, program, Options{}) {}
  DataParallel(MPI_Comm comm, const Program& program, Options o)
      : comm_(comm), bucket_floats_(std::max<std::size_t>(o.bucket_bytes / sizeof(float), 1)),
        sync_batch_norm_(o.sync_batch_norm), statistics_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    for (const Op& op : program.ops)
      if (op_traits(op.kind).has_statistics)
        for (std::size_t at : {op.running_mean, op.running_var})
          if (at != no_param) buffers_.push_back({at, static_cast<std::size_t>(op.in_channels)});
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Whether parameters are compared across processes after every step.
  bool verify = kDebug;

  // Refuses to train when the processes were started differently: every
  // process compares its (name, value) pairs with rank 0's, and all of them
  // throw, each naming what differs on it.
  void check_same_configuration(const std::vector<std::pair<std::string, std::string>>& fields) const {
    std::string mine;
    for (const auto& [k, v] : fields) mine += k + "=" + v + "\n";
    std::string root = mine;
    long long length = static_cast<long long>(root.size());
    detail::check(MPI_Bcast(&length, 1, MPI_LONG_LONG, 0, comm_), "MPI_Bcast");
    root.resize(static_cast<std::size_t>(length));
    detail::check(MPI_Bcast(root.data(), static_cast<int>(length), MPI_CHAR, 0, comm_), "MPI_Bcast");
    std::string difference;
    if (root != mine) {
      std::size_t a = 0, b = 0;
      while (a < root.size() && b < mine.size() && difference.empty()) {
        const std::size_t ea = root.find('\n', a), eb = mine.find('\n', b);
        const std::string ra = root.substr(a, ea - a), rb = mine.substr(b, eb - b);
        if (ra != rb) difference = rb + " here, " + ra + " on rank 0";
        a = ea + 1, b = eb + 1;
      }
      if (difference.empty()) difference = "a different number of settings";
    }
    int bad = difference.empty() ? 0 : 1, any = 0;
    detail::check(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm_), "MPI_Allreduce");
    if (bad) throw MpiError("ctnn: rank " + std::to_string(rank_) + " was started differently: " + difference);
    if (any) throw MpiError("ctnn: another rank was started with a different configuration (its message names it)");
  }

  // ---- train::GradientExchange ------------------------------------------------
  void start(std::span<float> parameters) override {
    detail::check(MPI_Bcast(parameters.data(), static_cast<int>(parameters.size()), MPI_FLOAT, 0, comm_), "MPI_Bcast");
  }

  void gradient_ready(std::span<float> gradients, std::size_t offset, std::size_t size) override {
    if (open_ == buckets_.size()) buckets_.emplace_back();
    Bucket& b = buckets_[open_];
    b.ranges.push_back({offset, size});
    b.floats += size;
    if (b.floats >= bucket_floats_) send(gradients);
    // MPI libraries without a progress thread advance non-blocking
    // collectives only inside MPI calls: give the ones in flight a turn.
    for (std::size_t i = 0; i < open_; ++i) {
      int done = 0;
      if (buckets_[i].request != MPI_REQUEST_NULL) MPI_Test(&buckets_[i].request, &done, MPI_STATUS_IGNORE);
    }
  }

  void gradients_done(std::span<float> gradients) override {
    if (open_ < buckets_.size() && buckets_[open_].floats > 0) send(gradients);
    std::vector<MPI_Request> requests;
    for (std::size_t i = 0; i < open_; ++i) requests.push_back(buckets_[i].request);
    detail::check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    const float inverse = 1.f / static_cast<float>(size_);
    for (std::size_t i = 0; i < open_; ++i) {
      Bucket& b = buckets_[i];
      const float* p = b.staging.data();
      for (const auto& [offset, size] : b.ranges)
        for (std::size_t k = 0; k < size; ++k) gradients[offset + k] = *p++ * inverse;
      b.ranges.clear();
      b.floats = 0;
    }
    open_ = 0;
  }

  train::StatisticsReduction* batch_norm_reduction() override { return sync_batch_norm_ ? &statistics_ : nullptr; }

  void parameters_updated(std::span<float> parameters) override {
    if (!buffers_.empty()) {  // rank 0's running statistics everywhere
      staging_.clear();
      for (const auto& [offset, size] : buffers_) staging_.insert(staging_.end(), &parameters[offset], &parameters[offset] + size);
      detail::check(MPI_Bcast(staging_.data(), static_cast<int>(staging_.size()), MPI_FLOAT, 0, comm_), "MPI_Bcast");
      const float* p = staging_.data();
      for (const auto& [offset, size] : buffers_) std::copy(p, p + size, &parameters[offset]), p += size;
    }
    if (verify) {
      const std::uint64_t mine = checksum(parameters);
      std::uint64_t lo = 0, hi = 0;
      detail::check(MPI_Allreduce(&mine, &lo, 1, MPI_UINT64_T, MPI_MIN, comm_), "MPI_Allreduce");
      detail::check(MPI_Allreduce(&mine, &hi, 1, MPI_UINT64_T, MPI_MAX, comm_), "MPI_Allreduce");
      if (lo != hi) throw MpiError("ctnn: the ranks' parameters differ after a step (checksum on rank " +
                                   std::to_string(rank_) + ": " + std::to_string(mine) + ")");
    }
  }

  // fit() options for this process: rank 0 alone prints and writes files;
  // epoch statistics and validation counts are summed over processes.
  train::FitOptions fit_options(train::FitOptions o) const {
    o.report = o.report && rank_ == 0;
    o.reduce_epoch = [comm = comm_](double& loss_sum, double& correct, double& images) {
      double v[3] = {loss_sum, correct, images}, total[3];
      detail::check(MPI_Allreduce(v, total, 3, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
      loss_sum = total[0], correct = total[1], images = total[2];
    };
    o.reduce_evaluation = [comm = comm_](train::Evaluation& e) {
      std::span<std::uint64_t> counts = e.confusion.counts();
      std::vector<std::uint64_t> total(counts.size());
      const std::uint64_t images = e.confusion.total();
      double loss = e.loss * static_cast<double>(images), loss_total = 0;
      detail::check(MPI_Allreduce(counts.data(), total.data(), static_cast<int>(counts.size()), MPI_UINT64_T, MPI_SUM, comm),
                    "MPI_Allreduce");
      detail::check(MPI_Allreduce(&loss, &loss_total, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
      std::copy(total.begin(), total.end(), counts.begin());
      const std::uint64_t all = e.confusion.total();
      e.loss = all ? loss_total / static_cast<double>(all) : 0;
    };
    return o;
  }

  // 64-bit FNV-1a over the bytes of `values`.
  static std::uint64_t checksum(std::span<const float> values) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const auto* p = reinterpret_cast<const unsigned char*>(values.data());
    for (std::size_t i = 0; i < values.size_bytes(); ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
  }

 private:
#ifdef NDEBUG
  static constexpr bool kDebug = false;
#else
  static constexpr bool kDebug = true;
#endif

  struct Bucket {
    std::vector<std::pair<std::size_t, std::size_t>> ranges;  // (offset, floats) in the arena
    std::size_t floats = 0;
    std::vector<float> staging;  // the ranges packed, reduced in place
    MPI_Request request = MPI_REQUEST_NULL;
  };

  // Packs the open bucket and starts its reduction.
  void send(std::span<float> gradients) {
    Bucket& b = buckets_[open_++];
    b.staging.resize(b.floats);
    float* p = b.staging.data();
    for (const auto& [offset, size] : b.ranges) p = std::copy(&gradients[offset], &gradients[offset] + size, p);
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, b.staging.data(), static_cast<int>(b.floats), MPI_FLOAT, MPI_SUM, comm_,
                                 &b.request),
                  "MPI_Iallreduce");
  }

  struct Statistics final : train::StatisticsReduction {
    explicit Statistics(MPI_Comm c) : comm(c) { MPI_Comm_size(comm, &size); }
    void sum(std::span<double> values) override {
      detail::check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm),
                    "MPI_Allreduce");
    }
    std::size_t processes() const override { return static_cast<std::size_t>(size); }
    MPI_Comm comm;
    int size = 1;
  };

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::size_t bucket_floats_;
  bool sync_batch_norm_;
  Statistics statistics_;
  std::vector<Bucket> buckets_;
  std::size_t open_ = 0;  // buckets [0, open_) are in flight this step
  std::vector<std::pair<std::size_t, std::size_t>> buffers_;  // BatchNorm running statistics
  std::vector<float> staging_;
};

// This process's contiguous part of an evaluation set (the parts of all
// processes cover it exactly once; fit_options() sums their counts).
inline data::ImageDataset evaluation_shard(const data::ImageDataset& d, std::size_t rank, std::size_t size) {
  const std::size_t first = d.size() * rank / size, last = d.size() * (rank + 1) / size;
  return d.slice(first, last - first);
}

}  // namespace ctnn::distributed
