// ctnn: compile-time typed neural networks. The umbrella header: everything
// in <ctnn/inference.hpp>, plus loading and saving weight files and training.
#pragma once

#include "ctnn/inference.hpp"
#include "ctnn/backend/cpu/training.hpp"
#include "ctnn/backend/reference/training.hpp"
#include "ctnn/io/model_io.hpp"
#include "ctnn/io/weights.hpp"
#include "ctnn/train/checkpoint.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/optim.hpp"
#include "ctnn/train/trainer.hpp"
