// ctnn for inference-only translation units: the layers, the ResNet family,
// Model and the default (CPU) backend, without the weight-file readers and
// the training code. Load weights in another TU (through <ctnn/ctnn.hpp>),
// or from an io::TensorFile, or into parameters with Model::update.
#pragma once

#include "ctnn/core/init.hpp"
#include "ctnn/core/layer.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/core/network.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/core/shape.hpp"
#include "ctnn/core/summary.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/batchnorm.hpp"
#include "ctnn/layers/conv.hpp"
#include "ctnn/layers/dropout.hpp"
#include "ctnn/layers/linear.hpp"
#include "ctnn/layers/pool.hpp"
#include "ctnn/models/blocks.hpp"
#include "ctnn/models/resnet.hpp"
#include "ctnn/backend/default.hpp"
