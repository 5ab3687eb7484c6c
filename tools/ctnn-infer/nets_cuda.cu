// Menu entries on the CUDA backend (FP32). Compiled by nvcc, and only when the
// build has CUDA (CTNN_INFER_WITH_CUDA); ctnn-infer then picks it by default
// when a GPU is present.
#include <ctnn/backend/cuda/cuda.cuh>

#include "run_network.hpp"

void ctnn_infer::register_cuda(Registry& r) { add_menu<ctnn::backend::Cuda>(r); }
bool ctnn_infer::cuda_device_available() { return ctnn::cuda::device_available(); }
