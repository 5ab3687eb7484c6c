// The one function template behind every menu entry: build the model, take
// the weights of --from, make the trainer from the options, run train::fit,
// print the confusion matrix and the test accuracy. Included only by the
// nets_*.cpp translation units.
#pragma once

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <ctnn/ctnn.hpp>
#include <ctnn/data/prefetch.hpp>
#include <ctnn/train/fit.hpp>

#include "menu.hpp"

#if defined(CTNN_TRAIN_WITH_MPI)
#include <ctnn/distributed/mpi.hpp>
#endif

namespace ctnn_train {

template <int Features>
struct Heads {
  using linear = ctnn::Linear<Features, ctnn::dynamic>;
  using sigmoid = ctnn::Sequential<ctnn::Linear<Features, 1>, ctnn::Sigmoid>;
};

inline ctnn::train::Schedule make_schedule(const Options& o, double lr, std::size_t steps_per_epoch) {
  const long total = static_cast<long>(o.epochs * steps_per_epoch);
  ctnn::train::Schedule s = ctnn::train::Schedule::constant(lr);
  const auto parts = split(o.schedule, ':');
  if (o.schedule == "constant") {
  } else if (o.schedule == "cosine") {
    s = ctnn::train::Schedule::cosine(lr, total);
  } else if (o.schedule == "one-cycle") {
    s = ctnn::train::Schedule::one_cycle(lr, total);
  } else if (parts[0] == "step" && parts.size() == 3) {
    const auto every = whole_number(parts[1], 1, 100000);
    const auto gamma = real_number(parts[2]);
    if (!every || !gamma || !(*gamma > 0 && *gamma <= 1))
      throw UsageError("bad --schedule '" + o.schedule + "': expected step:EPOCHS:GAMMA, 0 < GAMMA <= 1");
    s = ctnn::train::Schedule::step(lr, static_cast<long>(*every * static_cast<long long>(steps_per_epoch)), *gamma);
  } else {
    throw UsageError("unknown --schedule '" + o.schedule + "' (choose from constant, cosine, step:EPOCHS:GAMMA, one-cycle)");
  }
  if (o.warmup > 0) s = s.with_warmup(std::max(1L, std::lround(o.warmup * static_cast<double>(steps_per_epoch))), 0.01);
  return s;
}

inline ctnn::data::Augment make_augment(const Options& o) {
  ctnn::data::Augment a;
  if (o.augment == "none") return a;
  for (const std::string& item : split(o.augment, ',')) {
    const auto parts = split(item, ':');
    if (parts[0] == "flip" && parts.size() == 1) {
      a.horizontal_flip = true;
    } else if (parts[0] == "crop" && parts.size() == 2) {
      const auto p = whole_number(parts[1], 0, 64);
      if (!p) throw UsageError("bad --augment '" + o.augment + "': crop:P takes a padding from 0 to 64");
      a.crop_padding = static_cast<int>(*p);
    } else {
      throw UsageError("bad --augment '" + o.augment + "': expected a list of crop:P and flip, or none");
    }
  }
  return a;
}

// --distributed: this process's place in the MPI job (main() initialised MPI).
struct Place {
  std::size_t rank = 0, size = 1;
};
inline Place place(const Options& o) {
  Place p;
#if defined(CTNN_TRAIN_WITH_MPI)
  if (o.distributed) {
    int r = 0, n = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    p = {static_cast<std::size_t>(r), static_cast<std::size_t>(n)};
  }
#else
  (void)o;
#endif
  return p;
}

template <class Loss, class M, class Opt, class Source>
int fit_and_report(const Options& o, const DataSets& d, M& model, Opt optimizer, Source& batches) {
  const Place at = place(o);
  ctnn::train::TrainOptions t{
      .scope = o.train_head ? ctnn::train::Scope::head_only : ctnn::train::Scope::whole_network,
      .seed = o.seed,
      .schedule = make_schedule(o, optimizer.lr, batches.count()),
      .decay_norm_and_bias = o.decay_norm_and_bias,
      .lr_scale = o.lr_scale,
      .frozen = o.frozen,
      .clip_grad_norm = o.clip_grad_norm,
      .loss = {.label_smoothing = o.label_smoothing}};
  auto trainer = ctnn::train::make_trainer<Loss>(model, std::move(optimizer), std::move(t));
  trainer.sync_every_step(false);  // fit() refreshes the inference view once per epoch
  ctnn::train::Progress start;
  if (!o.resume.empty()) {
    start = ctnn::train::load_checkpoint(trainer, o.resume);
    std::printf("resumed from %s at epoch %llu\n", o.resume.c_str(), static_cast<unsigned long long>(start.epoch));
  }
  const ctnn::train::ProgressStyle style = o.progress == "bar"     ? ctnn::train::ProgressStyle::bar
                                           : o.progress == "lines" ? ctnn::train::ProgressStyle::lines
                                           : o.progress == "quiet" ? ctnn::train::ProgressStyle::quiet
                                                                   : ctnn::train::ProgressStyle::automatic;
  std::printf("backend: %s\n", model.backend_description().c_str());
  ctnn::train::FitOptions fo{.epochs = o.epochs,
                             .stop_after = o.stop_after,
                             .eval_normalize = d.normalize,
                             .progress = style,
                             .title = o.arch + " on " + d.description,
                             .log = o.log,
                             .curves = o.curves,
                             .checkpoint = o.checkpoint,
                             .best = o.best,
                             .patience = o.patience,
                             .positive_class = d.positive_class,
                             // a frozen backbone on unaugmented images: its features once, not every epoch
                             .cache_features = o.train_head && o.augment == "none"};
  const ctnn::data::ImageDataset* validation = &d.test;  // or, distributed, this process's part of it
  [[maybe_unused]] ctnn::data::ImageDataset shard;
#if defined(CTNN_TRAIN_WITH_MPI)
  std::optional<ctnn::distributed::DataParallel> dp;
  if (o.distributed) {
    dp.emplace(MPI_COMM_WORLD, model.program(), ctnn::distributed::DataParallel::Options{.sync_batch_norm = o.sync_batch_norm});
    // Every setting that shapes the run, compared with rank 0's before anything trains.
    std::string args;
    for (const std::string& a : o.arguments) args += (args.empty() ? "" : " ") + a;
    dp->check_same_configuration({{"arguments", args},
                                  {"data", d.description + ", " + std::to_string(d.train.size()) + " training and " +
                                               std::to_string(d.test.size()) + " test images"},
                                  {"parameters", std::to_string(model.parameters().size())}});
    trainer.set_exchange(&*dp);
    shard = ctnn::distributed::evaluation_shard(d.test, at.rank, at.size);
    validation = &shard;
    fo = dp->fit_options(std::move(fo));
    std::printf("distributed: %zu processes, batch %zu each (global batch %zu), %zu steps per epoch\n", at.size,
                o.batch, o.batch * at.size, batches.count());
  }
#endif
  std::fflush(stdout);
  const auto r = ctnn::train::fit(trainer, batches, validation, fo, std::move(start));
  if (!o.save.empty() && at.rank == 0) model.save(o.save);
  // The final model's evaluation (fit's last one, or a fresh one after a resumed, finished run).
  const ctnn::train::Evaluation e = r.last_evaluation
                                        ? *r.last_evaluation
                                        : ctnn::train::evaluate<Loss>(model, d.test, 250, d.normalize, d.positive_class);
  std::vector<std::string> names = d.class_names;
  if (Loss::binary) names = {"not " + d.class_names[static_cast<std::size_t>(d.positive_class)],
                             d.class_names[static_cast<std::size_t>(d.positive_class)]};
  std::printf("\nconfusion matrix on the %llu test images (rows: true class, columns: predicted)\n%s",
              static_cast<unsigned long long>(e.confusion.total()), e.confusion.table(names).c_str());
  if (r.stopped_early) std::printf("stopped early after epoch %zu\n", r.history.empty() ? 0 : r.history.back().epoch);
  if (r.best_epoch > 0) std::printf("best test accuracy: %.2f%% (epoch %zu)\n", 100 * r.best_accuracy, r.best_epoch);
  std::printf("test accuracy: %.2f%%\n", 100 * e.confusion.accuracy());
  return 0;
}

// The batches (each process its DistributedSampler shard; prepared ahead on
// a thread of their own with --prefetch), then the run.
template <class Loss, class M, class Opt>
int fit_and_report(const Options& o, const DataSets& d, M& model, Opt optimizer) {
  const Place at = place(o);
  const ctnn::data::BatchOptions b{.augment = make_augment(o), .normalize = d.normalize, .shard = at.rank, .shards = at.size};
  if (o.prefetch) {
    ctnn::data::PrefetchedBatches batches(d.train, o.batch, o.seed, b);
    return fit_and_report<Loss>(o, d, model, std::move(optimizer), batches);
  }
  ctnn::data::Batches batches(d.train, o.batch, o.seed, b);
  return fit_and_report<Loss>(o, d, model, std::move(optimizer), batches);
}

template <class Net, class Loss>
int train_network(const Options& o, const DataSets& d) {
  using Model = ctnn::Model<Net>;
  const std::size_t classes = o.classes.value_or(static_cast<std::size_t>(d.train.classes()));
  if (!Loss::binary && classes != static_cast<std::size_t>(d.train.classes()))
    throw UsageError("--head linear:" + std::to_string(classes) + " for data with " +
                     std::to_string(d.train.classes()) + " classes");
  std::unique_ptr<Model> model;
  if constexpr (Model::dynamic_classes)
    model = std::make_unique<Model>(classes, ctnn::Init::torchvision, o.seed);
  else
    model = std::make_unique<Model>(ctnn::Init::torchvision, o.seed);
  const bool new_head = !o.from.empty() && (o.train_head || o.new_head);  // keep only --from's backbone
  if (!o.from.empty()) {
    ctnn::io::TensorFile file = ctnn::io::read_weights(o.from);
    for (const auto& [from, to] : o.renames)
      if (file.rename(from, to) == 0)
        throw UsageError(o.from + ": --rename " + from + "=" + to + " matches no tensor");
    try {
      const ctnn::LoadReport r = model->load(file, new_head ? ctnn::Load::backbone_only : ctnn::Load::strict);
      std::printf("loaded %zu tensors from %s%s\n", r.loaded.size(), o.from.c_str(),
                  new_head ? " (backbone only; the head is new)" : "");
    } catch (const ctnn::io::LoadError& e) {
      std::string msg = e.what();
      if (const auto at = msg.find("load with ctnn::Load::backbone_only"); at != std::string::npos)
        msg = msg.substr(0, at) + "pass --new-head (or --train head)";
      throw UsageError(msg);
    }
    if (!Loss::binary && model->classes() != classes)
      throw UsageError(o.from + ": the checkpoint's head has " + std::to_string(model->classes()) +
                       " outputs, the data has " + std::to_string(classes) + " classes (--new-head replaces the head)");
  }
  // A head that does not come from --from starts from --init, or for a new
  // head by default Xavier (sigmoid) / PyTorch's default (linear); a fresh
  // model without --init keeps torchvision's initialisation throughout.
  if (new_head || !o.init.empty()) {
    const std::string scheme = !o.init.empty() ? o.init : Loss::binary ? "xavier" : "default";
    model->init(scheme == "xavier" ? ctnn::Init::xavier_uniform
                : scheme == "he"   ? ctnn::Init::he_normal
                                   : ctnn::Init::pytorch_default,
                o.seed + 1, ctnn::detail::head_prefix<Net>());
  }
  std::printf("network: %s, %s head, %zu parameters\n", o.arch.c_str(),
              Loss::binary ? ("sigmoid (" + d.class_names[static_cast<std::size_t>(d.positive_class)] + " or not)").c_str()
                           : ("linear:" + std::to_string(classes)).c_str(),
              model->parameter_count());
  switch (o.optimizer) {
    case Optim::sgd:
      return fit_and_report<Loss>(o, d, *model,
                                  ctnn::train::SGD{.lr = o.lr.value_or(0.1), .momentum = o.momentum,
                                                   .weight_decay = o.weight_decay.value_or(5e-4), .nesterov = o.nesterov});
    case Optim::adam:
      return fit_and_report<Loss>(o, d, *model,
                                  ctnn::train::Adam{.lr = o.lr.value_or(1e-3), .weight_decay = o.weight_decay.value_or(0)});
    case Optim::adamw:
      return fit_and_report<Loss>(o, d, *model, ctnn::train::Adam{.lr = o.lr.value_or(1e-3),
                                                                  .weight_decay = o.weight_decay.value_or(0.01),
                                                                  .decoupled = true});
  }
  return 1;
}

// One architecture's entries: 1 and 3 input channels, both heads. `Arch`
// names the network through a member alias template, `Arch::net<Head, Input>`:
// a struct per architecture rather than an alias template passed as a template
// template argument: with g++ 12, add_architecture<R20, 64> of two translation
// units, each with its own anonymous-namespace alias R20, became one symbol, and
// the option-A menu silently built option-B networks.
template <class Arch, int Features>
void add_architecture(Registry& r, const std::string& arch) {
  using H = Heads<Features>;
  using Grey = ctnn::Image<1, ctnn::dynamic, ctnn::dynamic>;
  using Rgb = ctnn::Image<3, ctnn::dynamic, ctnn::dynamic>;
  using ctnn::train::BCE, ctnn::train::CrossEntropy;
  r.push_back({arch, 1, Head::linear, &train_network<typename Arch::template net<typename H::linear, Grey>, CrossEntropy>});
  r.push_back({arch, 3, Head::linear, &train_network<typename Arch::template net<typename H::linear, Rgb>, CrossEntropy>});
  r.push_back({arch, 1, Head::sigmoid, &train_network<typename Arch::template net<typename H::sigmoid, Grey>, BCE>});
  r.push_back({arch, 3, Head::sigmoid, &train_network<typename Arch::template net<typename H::sigmoid, Rgb>, BCE>});
}

}  // namespace ctnn_train
