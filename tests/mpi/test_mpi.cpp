// Data-parallel training under mpirun -np 2 (tests/mpi/CMakeLists.txt runs
// each scenario with a timeout). Exit status 0 means every check held.
//
//   same-data    both ranks train on the same full batches: the averaged
//                gradient is each rank's own exactly, so the distributed run
//                must equal a single-process run bit for bit after every
//                step (broadcast at start, buckets, BatchNorm buffers), and
//                the ranks start from different initialisations.
//   sharded      each rank its DistributedSampler shard: after every step the
//                gradients are (g0 + g1) / 2 of the ranks' own gradients,
//                bit for bit, and the parameters are identical on both ranks;
//                fit() sums the epoch statistics and the validation counts.
//   resume       fit() over 2 epochs, against 1 epoch, a checkpoint written
//                by rank 0 alone, and a resumed second epoch on every rank:
//                the same parameters bit for bit, on both ranks.
//   sync-bn      synchronised BatchNorm: two ranks with half a batch each take
//                the steps of one process with the whole batch (relative 1e-5),
//                running statistics included.
//   mismatch     rank 1 claims another batch: both ranks refuse, naming it.
//   rank-throws  rank 1 throws mid-run: it reports and aborts the job.
//   rank-exits   rank 1 exits mid-step without a word: mpirun ends the job.
#include <ctnn/ctnn.hpp>
#include <ctnn/distributed/mpi.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace ctnn;

namespace {
using Net = ResNet20<Linear<64, 3>, Image<1, 10, 10>>;

data::ImageDataset images(std::size_t n) {
  std::vector<std::uint8_t> px(n * 100);
  std::vector<int> labels(n);
  SplitMix64 rng(5);
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int>(i % 3);
    for (std::size_t p = 0; p < 100; ++p) px[i * 100 + p] = static_cast<std::uint8_t>((rng.next() >> 58) + 60 * labels[i]);
  }
  return data::ImageDataset(std::move(px), std::move(labels), 1, 10, 10, 3);
}

int failures = 0;
void expect(bool ok, const std::string& what, int rank) {
  if (ok) return;
  std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what.c_str());
  ++failures;
}

template <class M>
auto make(M& model) {
  return train::make_trainer<train::CrossEntropy>(model, train::SGD{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4},
                                                  train::TrainOptions{.seed = 3});
}

// Keeps each rank's own gradients before the exchange averages them.
class Recording final : public train::GradientExchange {
 public:
  explicit Recording(distributed::DataParallel& dp) : dp_(dp) {}
  std::vector<float> local;
  void start(std::span<float> p) override { dp_.start(p); }
  void gradient_ready(std::span<float> g, std::size_t o, std::size_t n) override {
    std::copy(g.begin() + static_cast<long>(o), g.begin() + static_cast<long>(o + n), local.begin() + static_cast<long>(o));
    dp_.gradient_ready(g, o, n);
  }
  void gradients_done(std::span<float> g) override { dp_.gradients_done(g); }
  void parameters_updated(std::span<float> p) override { dp_.parameters_updated(p); }

 private:
  distributed::DataParallel& dp_;
};

int same_data(const distributed::Mpi& mpi) {
  const int rank = static_cast<int>(mpi.rank());
  const data::ImageDataset d = images(24);
  Model<Net, backend::Cpu> model(Init::torchvision, 10 + mpi.rank()), single(Init::torchvision, 10);
  auto trainer = make(model);
  auto reference = make(single);
  distributed::DataParallel dp(mpi.world(), model.program(), {.bucket_bytes = 16 << 10});  // several buckets
  dp.verify = true;
  trainer.set_exchange(&dp);
  const auto p0 = model.parameters(), r0 = single.parameters();
  expect(std::equal(p0.begin(), p0.end(), r0.begin(), r0.end()), "rank 0's parameters after set_exchange", rank);
  data::Batches batches(d, 8, 1, {.augment = {.crop_padding = 1, .horizontal_flip = true}});
  for (std::size_t s = 0; s < 6; ++s) {
    if (s % batches.count() == 0) batches.start_epoch(s / batches.count());
    const data::Batch x = batches.get(s % batches.count());
    const double a = trainer.step(x.images, {.classes = x.labels});
    const double b = reference.step(x.images, {.classes = x.labels});
    expect(a == b, "step " + std::to_string(s) + ": the same loss", rank);
    const auto p = model.parameters(), q = single.parameters();
    expect(std::equal(p.begin(), p.end(), q.begin(), q.end()),
           "step " + std::to_string(s) + ": parameters equal to the single-process run", rank);
  }
  return failures;
}

int sharded(const distributed::Mpi& mpi) {
  const int rank = static_cast<int>(mpi.rank());
  const data::ImageDataset d = images(26), val = images(11);  // 26: the sampler pads to 28
  Model<Net, backend::Cpu> model(Init::torchvision, 1);
  auto trainer = make(model);
  distributed::DataParallel dp(mpi.world(), model.program(), {.bucket_bytes = 16 << 10});
  Recording rec(dp);
  rec.local.assign(model.parameters().size(), 0.f);
  trainer.set_exchange(&rec);
  data::Batches batches(d, 4, 2, {.shard = mpi.rank(), .shards = mpi.size()});
  expect(batches.order().size() == 13, "each shard has 13 images", rank);
  for (std::size_t s = 0; s < 4; ++s) {
    const data::Batch x = batches.get(s);
    trainer.step(x.images, {.classes = x.labels});
    std::vector<float> all(rec.local.size() * mpi.size());
    MPI_Allgather(rec.local.data(), static_cast<int>(rec.local.size()), MPI_FLOAT, all.data(),
                  static_cast<int>(rec.local.size()), MPI_FLOAT, mpi.world());
    const auto g = trainer.gradients();
    bool same = true;
    for (std::size_t i = 0; i < g.size(); ++i)
      same &= g[i] == (all[i] + all[rec.local.size() + i]) * 0.5f;
    expect(same, "step " + std::to_string(s) + ": gradients are the mean of the ranks' own", rank);
    const std::uint64_t mine = distributed::DataParallel::checksum(model.parameters());
    std::uint64_t other = 0;
    MPI_Allreduce(&mine, &other, 1, MPI_UINT64_T, MPI_MAX, mpi.world());
    expect(mine == other, "step " + std::to_string(s) + ": parameters identical on both ranks", rank);
  }
  // fit(): statistics summed over ranks; each rank evaluates its part of the validation set.
  const data::ImageDataset part = distributed::evaluation_shard(val, mpi.rank(), mpi.size());
  const auto r = train::fit(trainer, batches, &part, dp.fit_options({.epochs = 1, .progress = train::ProgressStyle::quiet}));
  expect(r.last_evaluation && r.last_evaluation->confusion.total() == 11, "validation counts summed over ranks", rank);
  const auto whole = train::evaluate<train::CrossEntropy>(model, val, 250);
  expect(r.last_evaluation && r.last_evaluation->confusion.correct() == whole.confusion.correct(),
         "the summed validation equals a whole-set evaluation", rank);
  return failures;
}

// Not a test (never asserted): the step time of ResNet-20 on 1x28x28 at
// batch 64 per rank with and without the exchange, and a bare allreduce of
// all its gradients, medians of 15. `mpirun -np 2 ctnn-test-mpi timing`.
int timing(const distributed::Mpi& mpi) {
  using Big = ResNet20<Linear<64, 10>, Image<1, 28, 28>>;
  std::vector<std::uint8_t> px(64 * 784);
  SplitMix64 rng(1);
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.next() >> 56);
  std::vector<int> labels(64);
  for (std::size_t i = 0; i < 64; ++i) labels[i] = static_cast<int>(i % 10);
  const data::ImageDataset d(std::move(px), std::move(labels), 1, 28, 28, 10);
  data::Batches batches(d, 64, 1);
  const data::Batch x = batches.get(0);
  const auto median = [&](auto&& f) {
    std::vector<double> t;
    for (int r = 0; r < 15; ++r) {
      MPI_Barrier(mpi.world());
      const double start = MPI_Wtime();
      f();
      t.push_back(MPI_Wtime() - start);
    }
    std::sort(t.begin(), t.end());
    return 1e3 * t[7];
  };
  Model<Big, backend::Cpu> model(Init::torchvision, 1);
  auto trainer = make(model);
  trainer.sync_every_step(false);
  const double alone = median([&] { trainer.step(x.images, {.classes = x.labels}); });
  distributed::DataParallel dp(mpi.world(), model.program());
  dp.verify = false;
  trainer.set_exchange(&dp);
  const double together = median([&] { trainer.step(x.images, {.classes = x.labels}); });
  std::vector<float> g(model.parameters().size(), 1.f);
  const double reduce = median([&] { MPI_Allreduce(MPI_IN_PLACE, g.data(), static_cast<int>(g.size()), MPI_FLOAT, MPI_SUM, mpi.world()); });
  if (mpi.rank() == 0)
    std::printf("ResNet-20 1x28x28, batch 64 per rank, %zu ranks, %zu gradient floats (%.2f MB):\n"
                "  step without exchange %.1f ms, with exchange %.1f ms (+%.1f ms); bare allreduce %.2f ms\n",
                mpi.size(), g.size(), 4e-6 * static_cast<double>(g.size()), alone, together, together - alone, reduce);
  return 0;
}

int resume(const distributed::Mpi& mpi) {
  const int rank = static_cast<int>(mpi.rank());
  const data::ImageDataset d = images(32), val = images(9);
  const data::ImageDataset part = distributed::evaluation_shard(val, mpi.rank(), mpi.size());
  const data::BatchOptions opts{.augment = {.crop_padding = 1, .horizontal_flip = true}, .shard = mpi.rank(),
                                .shards = mpi.size()};
  const auto trainer_of = [](auto& model) {
    return train::make_trainer<train::CrossEntropy>(model, train::SGD{.lr = 0.05, .momentum = 0.9},
                                                    train::TrainOptions{.seed = 3, .schedule = train::Schedule::cosine(0.05, 8)});
  };
  const std::string ckpt = "ctnn-test-mpi-resume.ckpt.safetensors";
  Model<Net, backend::Cpu> whole(Init::torchvision, 1), first(Init::torchvision, 1), second(Init::torchvision, 5);
  {
    auto t = trainer_of(whole);
    distributed::DataParallel dp(mpi.world(), whole.program());
    t.set_exchange(&dp);
    data::Batches b(d, 4, 2, opts);
    train::fit(t, b, &part, dp.fit_options({.epochs = 2, .progress = train::ProgressStyle::quiet}));
  }
  {
    auto t = trainer_of(first);
    distributed::DataParallel dp(mpi.world(), first.program());
    t.set_exchange(&dp);
    data::Batches b(d, 4, 2, opts);
    train::fit(t, b, &part, dp.fit_options({.epochs = 2, .stop_after = 1, .progress = train::ProgressStyle::quiet,
                                            .checkpoint = ckpt}));
  }
  MPI_Barrier(mpi.world());  // rank 0 has written the checkpoint
  {
    auto t = trainer_of(second);
    const train::Progress at = train::load_checkpoint(t, ckpt);
    expect(at.epoch == 1 && at.history.size() == 1, "the checkpoint is after epoch 1", rank);
    distributed::DataParallel dp(mpi.world(), second.program());
    t.set_exchange(&dp);
    data::Batches b(d, 4, 2, opts);
    const auto r = train::fit(t, b, &part, dp.fit_options({.epochs = 2, .progress = train::ProgressStyle::quiet}), at);
    expect(r.history.size() == 2, "the resumed run's history has both epochs", rank);
  }
  const auto p = second.parameters(), q = whole.parameters();
  expect(std::equal(p.begin(), p.end(), q.begin(), q.end()), "resumed parameters equal the uninterrupted run's", rank);
  MPI_Barrier(mpi.world());
  if (mpi.rank() == 0) std::remove(ckpt.c_str());
  return failures;
}

int sync_bn(const distributed::Mpi& mpi) {
  const int rank = static_cast<int>(mpi.rank());
  const data::ImageDataset d = images(32);
  Model<Net, backend::Cpu> model(Init::torchvision, 1), single(Init::torchvision, 1);
  auto trainer = make(model);
  auto reference = make(single);
  distributed::DataParallel dp(mpi.world(), model.program(), {.sync_batch_norm = true});
  trainer.set_exchange(&dp);
  data::Batches batches(d, 8, 4, {.augment = {.crop_padding = 1, .horizontal_flip = true}});
  const std::size_t half = 8 / mpi.size();
  double worst = 0;
  // Each step from the same state: after it, every rank's trainer takes the
  // whole-batch run's parameters, running statistics and momenta. Compared
  // as free-running trajectories, the two would part at the first ReLU input
  // that lies within the rounding of the two reductions' orders (about 1e-8)
  // of zero, which tiny test maps meet within a few steps.
  for (std::size_t s = 0; s < 4; ++s) {
    const data::Batch x = batches.get(s);  // the whole batch; this rank trains on its half
    const ConstTensorView mine{x.images.data + mpi.rank() * half * 100, {half, 1, 10, 10}};
    trainer.step(mine, {.classes = x.labels.subspan(mpi.rank() * half, half)});
    reference.step(x.images, {.classes = x.labels});
    const auto p = model.parameters(), q = single.parameters();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < p.size(); ++i)
      diff = std::max(diff, double(std::abs(p[i] - q[i]))), scale = std::max(scale, double(std::abs(q[i])));
    worst = std::max(worst, diff / scale);
    const auto state = reference.resumable();
    trainer.resume({state.optimizer_steps, state.rng_state}, reference.executor().parameters(),
                   reference.executor().optimizer_state(), reference.executor().batches_seen());
  }
  if (rank == 0) std::printf("sync-bn: max |difference| / max |parameter| over 4 steps: %.2e\n", worst);
  expect(worst <= 1e-5, "synchronised BatchNorm on half batches equals one process on the whole batch", rank);
  // Without synchronisation the same run differs: per-rank statistics are another computation.
  Model<Net, backend::Cpu> local(Init::torchvision, 1);
  auto per_rank = make(local);
  distributed::DataParallel plain(mpi.world(), local.program());
  per_rank.set_exchange(&plain);
  const data::Batch x = batches.get(0);
  per_rank.step({x.images.data + mpi.rank() * half * 100, {half, 1, 10, 10}},
                {.classes = x.labels.subspan(mpi.rank() * half, half)});
  Model<Net, backend::Cpu> one(Init::torchvision, 1);
  auto one_step = make(one);
  one_step.step(x.images, {.classes = x.labels});
  double diff = 0;
  for (std::size_t i = 0; i < local.parameters().size(); ++i)
    diff = std::max(diff, double(std::abs(local.parameters()[i] - one.parameters()[i])));
  expect(diff > 1e-4, "per-rank BatchNorm is not the whole batch's", rank);
  return failures;
}

int scenario(const distributed::Mpi& mpi, const std::string& name) {
  if (name == "same-data") return same_data(mpi);
  if (name == "sync-bn") return sync_bn(mpi);
  if (name == "resume") return resume(mpi);
  if (name == "timing") return timing(mpi);
  if (name == "sharded") return sharded(mpi);
  Model<Net, backend::Cpu> model(Init::torchvision, 1);
  auto trainer = make(model);
  distributed::DataParallel dp(mpi.world(), model.program());
  if (name == "mismatch") {
    dp.check_same_configuration({{"network", "resnet20"}, {"batch", mpi.rank() == 1 ? "16" : "8"}});
    return 1;  // not reached: the check throws on every rank
  }
  trainer.set_exchange(&dp);
  const data::ImageDataset d = images(32);
  data::Batches batches(d, 8, 1, {.shard = mpi.rank(), .shards = mpi.size()});
  for (std::size_t s = 0; s < batches.count(); ++s) {
    if (s == 1 && mpi.rank() == 1) {
      if (name == "rank-throws") throw std::runtime_error("rank 1 gave up (a test of fault handling)");
      if (name == "rank-exits") _exit(3);
    }
    const data::Batch x = batches.get(s);
    trainer.step(x.images, {.classes = x.labels});
  }
  return 1;  // not reached: rank 0 is stopped by the job's abort
}
}  // namespace

int main(int argc, char** argv) {
  distributed::Mpi mpi(argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: mpirun -np 2 ctnn-test-mpi SCENARIO\n");
    return 2;
  }
  try {
    const int bad = scenario(mpi, argv[1]);
    int any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, mpi.world());
    if (mpi.rank() == 0) std::printf("%s: %s\n", argv[1], any ? "FAILED" : "passed");
    return any ? 1 : 0;
  } catch (const distributed::MpiError& e) {  // a refusal every rank reaches: no abort needed
    std::fprintf(stderr, "rank %zu: %s\n", mpi.rank(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %zu: %s\n", mpi.rank(), e.what());
    mpi.abort(1);
  }
}
