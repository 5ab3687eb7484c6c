// ctnn-train's menu of compiled networks and what every entry receives.
//
// A network is a type, so the tool offers the (architecture, input channels,
// head) combinations it instantiated; they are spread over several
// translation units (nets_*.cpp) so that the build parallelises.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <ctnn/data/dataset.hpp>
#include <ctnn/data/batches.hpp>

#include "options.hpp"

namespace ctnn_train {

struct DataSets {
  ctnn::data::ImageDataset train, test;
  std::vector<std::string> class_names;  // one per class
  ctnn::data::Normalize normalize;       // per channel, measured on the training images
  std::string description;
  int positive_class = -1;               // --head sigmoid: the label that means yes
};

using TrainFn = int (*)(const Options&, const DataSets&);

struct Entry {
  std::string arch;
  std::size_t channels;
  Head head;
  TrainFn train;
};

using Registry = std::vector<Entry>;

void register_cifar(Registry&);          // nets_cifar.cpp: option B
void register_cifar_option_a(Registry&);  // nets_cifar_a.cpp
void register_imagenet(Registry&);       // nets_imagenet.cpp

}  // namespace ctnn_train
