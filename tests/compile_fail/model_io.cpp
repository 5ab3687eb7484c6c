// Model::load(path) and save(path) need the file readers of <ctnn/io/model_io.hpp>:
// a translation unit with only <ctnn/inference.hpp> gets a compile error, not a link error.
// COMPILE-FAIL CTNN_FAIL_LOAD CTNN_NEEDS_MODEL_IO max-errors=1
// COMPILE-FAIL CTNN_FAIL_SAVE CTNN_NEEDS_MODEL_IO max-errors=1
#include <ctnn/inference.hpp>

using Net = ctnn::Network<ctnn::Image<1, 8, 8>, ctnn::Conv<1, 2, 3>, ctnn::GlobalAvgPool, ctnn::Linear<2, 2>>;

void use(ctnn::Model<Net>& model) {
#if defined(CTNN_FAIL_LOAD)
  model.load("weights.safetensors");
#elif defined(CTNN_FAIL_SAVE)
  model.save("weights.safetensors");
#else
  model.init(ctnn::Init::he_normal, 1);  // everything else works without io
#endif
}
