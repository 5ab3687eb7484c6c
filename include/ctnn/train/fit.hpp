// The epoch loop every training program writes, written once: batches through
// a Trainer, a progress bar, validation after each epoch (confusion matrix,
// loss), a JSON-lines log, the curves as SVG, a resumable checkpoint, the
// best model kept, early stopping.
//
//   data::Batches batches(train, 128, /*seed=*/1, {.augment = {...}, .normalize = norm});
//   train::FitResult r = train::fit(trainer, batches, &test,
//                                   {.epochs = 28, .eval_normalize = norm, .log = "run.jsonl",
//                                    .curves = "run.svg", .checkpoint = "run.ckpt.safetensors",
//                                    .best = "best.safetensors", .patience = 5});
//   // resume after an interruption, bit for bit:
//   train::fit(trainer, batches, &test, options, train::load_checkpoint(trainer, "run.ckpt.safetensors"));
//
// Hooks (FitOptions::reduce_*) let a data-parallel driver sum the statistics
// of every process before they are reported; `report` is false on processes
// that must not write files or print.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "ctnn/data/batches.hpp"
#include "ctnn/train/checkpoint.hpp"
#include "ctnn/train/metrics.hpp"
#include "ctnn/train/progress.hpp"
#include "ctnn/train/report.hpp"

namespace ctnn::train {

struct FitOptions {
  std::size_t epochs = 1;                 // the run's total, counting epochs before a resume
  std::size_t stop_after = 0;             // > 0: this call trains at most this many epochs (a job's time
                                          // limit; the checkpoint resumes the rest)
  std::size_t eval_batch = 250;
  data::Normalize eval_normalize{};       // validation images: the training normalisation, no augmentation
  ProgressStyle progress = ProgressStyle::automatic;
  std::FILE* out = stdout;
  bool report = true;                     // false: print nothing, write no file (every rank but one)
  std::string title = "training";         // heads the curves
  std::filesystem::path log{};            // JSON lines, one per epoch (rewritten from the history on resume)
  std::filesystem::path curves{};         // SVG, rewritten after every epoch
  std::filesystem::path checkpoint{};     // save_checkpoint after every epoch
  std::filesystem::path best{};           // the model (safetensors) with the best validation accuracy so far
  std::size_t patience = 0;               // stop after this many epochs without a better validation accuracy; 0: never
  double min_delta = 0;                   // how much higher (as a fraction, 0.001 = 0.1 point) counts as better
  int positive_class = -1;                // a binary loss (BCE): the label that means 1
  // Head-only training on batches without augmentation: the frozen backbone
  // gives an image the same features in every epoch, so compute them once
  // (the first time the image is drawn) and train the head on the cache. The
  // same steps bit for bit, without the backbone's forward pass after the
  // first epoch; costs images x features floats of memory.
  bool cache_features = false;
  // Data-parallel drivers: sum {loss x images, correct, images} of the epoch
  // over processes; merge validation confusion matrices. Identity by default.
  std::function<void(double& loss_sum, double& correct, double& images)> reduce_epoch{};
  std::function<void(Evaluation&)> reduce_evaluation{};
};

struct FitResult {
  std::vector<EpochRecord> history;         // every epoch of the run, resumed ones included
  std::size_t best_epoch = 0;               // 1-based; 0 without validation
  double best_accuracy = std::numeric_limits<double>::quiet_NaN();
  bool stopped_early = false;
  std::optional<Evaluation> last_evaluation{};  // the last epoch's validation
};

namespace detail {
// The best validation accuracy of a history and where it was reached.
inline std::pair<std::size_t, double> best_of(const std::vector<EpochRecord>& h, double min_delta) {
  std::size_t at = 0;
  double best = std::numeric_limits<double>::quiet_NaN();
  for (const EpochRecord& r : h)
    if (std::isfinite(r.val_accuracy) && (!std::isfinite(best) || r.val_accuracy > best + min_delta))
      best = r.val_accuracy, at = r.epoch;
  return {at, best};
}

inline void write_log(const std::filesystem::path& path, const std::vector<EpochRecord>& history) {
  std::string text;
  for (const EpochRecord& r : history) text += json_line(r) + "\n";
  write_text_file(path, text);
}
// fit's feature cache (FitOptions::cache_features), per data-set image.
class FeatureCache {
 public:
  // The features of batch x: from the cache where every image of it has
  // them, else computed by `trainer` (and kept).
  template <class T>
  ConstTensorView of(T& trainer, const data::Batch& x) {
    const std::size_t n = x.indices.size();
    if (n == 0 || n != x.images.shape.n)
      throw std::invalid_argument("ctnn: caching features needs batches that say which images they hold");
    const std::size_t width = item_.per_item();
    bool cached = width > 0;
    for (std::size_t i = 0; cached && i < n; ++i) cached = x.indices[i] < have_.size() && have_[x.indices[i]];
    if (!cached) {
      const ConstTensorView f = trainer.features(x.images);
      item_ = {1, f.shape.c, f.shape.h, f.shape.w};
      const std::size_t w = item_.per_item();
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = x.indices[i];
        if (at >= have_.size()) {
          have_.resize(at + 1, 0);
          values_.resize(have_.size() * w);
        }
        std::copy(f.data + i * w, f.data + (i + 1) * w, values_.begin() + static_cast<std::ptrdiff_t>(at * w));
        have_[at] = 1;
      }
      return f;
    }
    const Extents shape{n, item_.c, item_.h, item_.w};
    if (batch_.size() < shape.count()) batch_ = Tensor(shape);
    for (std::size_t i = 0; i < n; ++i) {
      const float* src = values_.data() + x.indices[i] * width;
      std::copy(src, src + width, batch_.data() + i * width);
    }
    return {batch_.data(), shape};
  }

 private:
  Extents item_{0, 0, 0, 0};  // one image's features (empty until the first batch)
  std::vector<float> values_;
  std::vector<char> have_;
  Tensor batch_;
};

}  // namespace detail

// `batches`: data::Batches, data::PrefetchedBatches, or anything with
// count(), start_epoch(epoch) and get(b) -> data::Batch.
template <class Loss, class Net, class Backend, class Opt, class Source>
FitResult fit(Trainer<Loss, Net, Backend, Opt>& trainer, Source& batches, const data::ImageDataset* validation,
              const FitOptions& o, Progress start = {}) {
  LabelTargets<Loss> targets(o.positive_class);
  if (start.batch > batches.count())
    throw std::invalid_argument("ctnn: resuming at batch " + std::to_string(start.batch) + " of an epoch of " +
                                std::to_string(batches.count()));
  if (start.history.size() != start.epoch)
    throw std::invalid_argument("ctnn: resuming at epoch " + std::to_string(start.epoch) + " with a history of " +
                                std::to_string(start.history.size()) + " epochs");
  if (o.cache_features && trainer.scope() != Scope::head_only)
    throw std::invalid_argument("ctnn: cache_features needs head-only training (Scope::head_only): a trained "
                                "backbone changes the features every step");
  detail::FeatureCache cache;
  FitResult result;
  result.history = std::move(start.history);
  std::tie(result.best_epoch, result.best_accuracy) = detail::best_of(result.history, o.min_delta);
  std::FILE* out = o.report ? o.out : nullptr;
  const ProgressStyle style = o.report ? o.progress : ProgressStyle::quiet;
  // Early stopping: `patience` epochs of the history since the best one.
  const auto patience_spent = [&] {
    return o.patience > 0 && result.best_epoch > 0 && result.history.size() - result.best_epoch >= o.patience;
  };

  const std::size_t end = o.stop_after ? std::min(o.epochs, static_cast<std::size_t>(start.epoch) + o.stop_after) : o.epochs;
  for (std::size_t epoch = start.epoch; epoch < end; ++epoch) {
    if (patience_spent()) {
      result.stopped_early = true;  // already decided before an interruption
      break;
    }
    batches.start_epoch(epoch);
    const std::size_t first = epoch == start.epoch ? static_cast<std::size_t>(start.batch) : 0;
    ProgressBar bar(out, style, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                    batches.count() - first);
    double loss_sum = 0, correct = 0, images = 0;
    for (std::size_t b = first; b < batches.count(); ++b) {
      const data::Batch x = batches.get(b);
      const double n = static_cast<double>(x.labels.size());
      loss_sum += (o.cache_features ? trainer.step_on_features(cache.of(trainer, x), targets.of(x.labels))
                                    : trainer.step(x.images, targets.of(x.labels))) *
                  n;
      correct += static_cast<double>(trainer.last_correct());
      images += n;
      bar.update(b + 1 - first, loss_sum / images, correct / images, static_cast<std::size_t>(images));
    }
    const double seconds = bar.seconds();
    EpochRecord r;
    r.epoch = epoch + 1;
    r.seconds = seconds;
    if (o.reduce_epoch) o.reduce_epoch(loss_sum, correct, images);
    r.images_per_second = seconds > 0 ? images / seconds : 0;  // every process's images: the job's rate
    r.train_loss = images > 0 ? loss_sum / images : 0;
    r.train_accuracy = images > 0 ? correct / images : 0;
    r.learning_rate = trainer.learning_rate();
    trainer.sync_model();  // the inference view: validation, keep-best, the caller
    if (validation) {
      // Scored with the training loss (the trainer checked it suits the head), without label smoothing.
      Evaluation e = evaluate<Loss>(trainer.model(), *validation, o.eval_batch, o.eval_normalize, o.positive_class);
      if (o.reduce_evaluation) o.reduce_evaluation(e);
      r.val_loss = e.loss;
      r.val_accuracy = e.confusion.accuracy();
      result.last_evaluation = std::move(e);
    }
    result.history.push_back(r);
    const auto [best_epoch, best] = detail::best_of(result.history, o.min_delta);
    const bool improved = best_epoch == r.epoch;
    result.best_epoch = best_epoch, result.best_accuracy = best;
    if (out) {
      std::fprintf(out, "epoch %zu/%zu  train loss %.4f acc %.2f%%", r.epoch, o.epochs, r.train_loss, 100 * r.train_accuracy);
      if (validation)
        std::fprintf(out, "  val loss %.4f acc %.2f%%%s", r.val_loss, 100 * r.val_accuracy, improved ? " (best)" : "");
      std::fprintf(out, "  lr %.4g  %.1f s  %.0f img/s\n", r.learning_rate, r.seconds, r.images_per_second);
      std::fflush(out);
    }
    if (o.report) {
      if (improved && !o.best.empty()) trainer.model().save(o.best);
      if (!o.log.empty()) detail::write_log(o.log, result.history);
      if (!o.curves.empty()) write_text_file(o.curves, curves_svg(result.history, o.title));
      if (!o.checkpoint.empty()) save_checkpoint(trainer, o.checkpoint, {epoch + 1, 0, result.history});
    }
    if (patience_spent() && epoch + 1 < o.epochs) {
      result.stopped_early = true;
      if (out) std::fprintf(out, "early stop: no better validation accuracy for %zu epochs (best %.2f%% at epoch %zu)\n",
                            o.patience, 100 * result.best_accuracy, result.best_epoch);
      break;
    }
  }
  return result;
}

}  // namespace ctnn::train
