// ctnn: compile-time typed neural networks. The umbrella header.
#pragma once

#include "ctnn/core/layer.hpp"
#include "ctnn/core/network.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/core/shape.hpp"
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
#include "ctnn/core/model.hpp"
