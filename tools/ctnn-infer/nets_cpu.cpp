// Menu entries on the CPU backend (xsimd + OpenMP), for the instruction set
// this file is compiled for.
#include <ctnn/backend/cpu/cpu.hpp>

#include "run_network.hpp"

void ctnn_infer::register_cpu(Registry& r) { add_menu<ctnn::backend::Cpu>(r); }
