// Classification metrics: a confusion matrix (accuracy, per-class accuracy,
// the table printed at the end of training) and evaluate(), which runs a
// model's inference backend over a data set and fills one.
//
//   const auto eval = train::evaluate<train::CrossEntropy>(model, test, 250, {{0.2860f}, {0.3530f}});
//   std::printf("%.2f%%\n%s", 100 * eval.confusion.accuracy(), eval.confusion.table(names).c_str());
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/core/tensor.hpp"
#include "ctnn/data/batches.hpp"
#include "ctnn/train/loss.hpp"

namespace ctnn::train {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes = 0) : classes_(classes), counts_(static_cast<std::size_t>(classes) * classes) {
    if (classes < 0) throw std::invalid_argument("ctnn: a confusion matrix needs a class count >= 0");
  }

  void add(int truth, int predicted) {
    if (truth < 0 || truth >= classes_ || predicted < 0 || predicted >= classes_)
      throw std::out_of_range("ctnn: confusion matrix entry (" + std::to_string(truth) + ", " +
                              std::to_string(predicted) + ") outside " + std::to_string(classes_) + " classes");
    ++counts_[index(truth, predicted)];
  }
  // Counts of another matrix of the same classes (another shard of the data).
  void merge(const ConfusionMatrix& other) {
    if (other.classes_ != classes_)
      throw std::invalid_argument("ctnn: merging confusion matrices of " + std::to_string(other.classes_) + " and " +
                                  std::to_string(classes_) + " classes");
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  }

  int classes() const { return classes_; }
  std::uint64_t count(int truth, int predicted) const { return counts_[index(truth, predicted)]; }
  // Row-major [truth][predicted], for reductions across processes.
  std::span<std::uint64_t> counts() { return counts_; }
  std::span<const std::uint64_t> counts() const { return counts_; }

  std::uint64_t total() const {
    std::uint64_t n = 0;
    for (auto c : counts_) n += c;
    return n;
  }
  std::uint64_t correct() const {
    std::uint64_t n = 0;
    for (int k = 0; k < classes_; ++k) n += count(k, k);
    return n;
  }
  double accuracy() const { return total() ? static_cast<double>(correct()) / static_cast<double>(total()) : 0.0; }
  // Of the images of class k, the fraction predicted as k (recall); 0 for a class never seen.
  double class_accuracy(int k) const {
    std::uint64_t row = 0;
    for (int p = 0; p < classes_; ++p) row += count(k, p);
    return row ? static_cast<double>(count(k, k)) / static_cast<double>(row) : 0.0;
  }

  // Rows: true class, with its accuracy; columns: predicted class. `names`
  // may be empty (classes are then numbered) or name every class.
  std::string table(std::span<const std::string> names = {}) const {
    if (!names.empty() && names.size() != static_cast<std::size_t>(classes_))
      throw std::invalid_argument("ctnn: " + std::to_string(names.size()) + " class names for " +
                                  std::to_string(classes_) + " classes");
    const auto name = [&](int k) { return names.empty() ? std::to_string(k) : names[static_cast<std::size_t>(k)]; };
    std::size_t label_width = 5;
    for (int k = 0; k < classes_; ++k) label_width = std::max(label_width, name(k).size());
    std::uint64_t largest = 0;
    for (auto c : counts_) largest = std::max(largest, c);
    const int cell = std::min<int>(21, std::max<int>(4, static_cast<int>(std::to_string(largest).size()) + 1));
    char buf[64];
    std::string s;
    s += std::string(label_width, ' ') + "  accuracy  predicted:";
    for (int p = 0; p < classes_; ++p) std::snprintf(buf, sizeof buf, "%*d", cell, p), s += buf;
    s += "\n";
    for (int k = 0; k < classes_; ++k) {
      const std::string n = name(k);
      s += std::string(label_width - n.size(), ' ') + n;
      std::snprintf(buf, sizeof buf, "  %7.2f%%  %2d        ", 100 * class_accuracy(k), k);
      s += buf;
      for (int p = 0; p < classes_; ++p)
        std::snprintf(buf, sizeof buf, "%*llu", cell, static_cast<unsigned long long>(count(k, p))), s += buf;
      s += "\n";
    }
    return s;
  }

 private:
  std::size_t index(int truth, int predicted) const {
    return static_cast<std::size_t>(truth) * static_cast<std::size_t>(classes_) + static_cast<std::size_t>(predicted);
  }

  int classes_;
  std::vector<std::uint64_t> counts_;
};

struct Evaluation {
  ConfusionMatrix confusion;
  double loss = 0;  // mean over the images
};

// How a data set's class labels become a loss's targets: the labels
// themselves, or, for a binary loss, 1 for `positive` and 0 for every other
// class ("is it a shirt?" on Fashion-MNIST's ten classes).
template <class Loss>
class LabelTargets {
 public:
  explicit LabelTargets(int positive = -1) : positive_(positive) {
    if (Loss::binary && positive < 0)
      throw std::invalid_argument("ctnn: a binary loss needs the positive class (the label that means 1)");
  }
  Targets of(std::span<const int> labels) {
    if constexpr (!Loss::binary) {
      return {.classes = labels};
    } else {
      buffer_.resize(labels.size());
      for (std::size_t i = 0; i < labels.size(); ++i) buffer_[i] = labels[i] == positive_ ? 1.f : 0.f;
      return {.binary = buffer_};
    }
  }
  // The class of the confusion matrix a label counts in, and the number of classes.
  int truth(int label) const { return Loss::binary ? (label == positive_ ? 1 : 0) : label; }
  int classes(int labels) const { return Loss::binary ? 2 : labels; }

 private:
  int positive_;
  std::vector<float> buffer_;
};

// The model's inference backend (eval mode, BatchNorm folded) over `data`,
// in order, `batch` images at a time. Loss names how the head's output is
// scored (CrossEntropy for logits, CrossEntropyOnProbabilities for Softmax,
// BCE for a Sigmoid head, whose confusion matrix is 2 x 2: 1 = `positive`).
template <class Loss, class M>
Evaluation evaluate(const M& model, const data::ImageDataset& data, std::size_t batch, data::Normalize normalize = {},
                    int positive = -1) {
  LabelTargets<Loss> targets(positive);
  data::Batches batches(data, batch, 0, {.shuffle = false, .normalize = std::move(normalize)});
  auto ctx = model.make_context({batch, data.height(), data.width()});
  Evaluation e{ConfusionMatrix(targets.classes(data.classes())), 0};
  Tensor scratch;
  for (std::size_t b = 0; b < batches.count(); ++b) {
    const data::Batch x = batches.get(b);
    const ConstTensorView y = model.forward(x.images, ctx);
    const std::size_t outputs = Loss::binary ? 1 : static_cast<std::size_t>(data.classes());
    if (y.shape.per_item() != outputs)
      throw std::invalid_argument("ctnn: the model has " + std::to_string(y.shape.per_item()) + " outputs, " +
                                  (Loss::binary ? std::string("a binary head has 1")
                                                : "the data set has " + std::to_string(data.classes()) + " classes"));
    if (scratch.size() < y.size()) scratch = Tensor(y.shape.n, y.shape.c, y.shape.h, y.shape.w);
    e.loss += Loss::value(y, targets.of(x.labels), {scratch.data(), y.shape}) * static_cast<double>(x.labels.size());
    for (std::size_t i = 0; i < x.labels.size(); ++i)
      e.confusion.add(targets.truth(x.labels[i]),
                      Loss::binary ? predicted_binary(y.data[i], Loss::expects) : predicted_class(y.item(i)));
  }
  e.loss /= static_cast<double>(data.size());
  return e;
}

}  // namespace ctnn::train
