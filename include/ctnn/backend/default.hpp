// Which backend Model<Net> uses when none is named.
#pragma once

#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/core/model.hpp"

namespace ctnn {
namespace backend {
using Default = Reference;
}
template <class Net, class Backend = backend::Default>
class Model;
}  // namespace ctnn
