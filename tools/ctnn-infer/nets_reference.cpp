// Menu entries on the reference backend (plain loops: the oracle, slow).
#include "run_network.hpp"

void ctnn_infer::register_reference(Registry& r) { add_menu<ctnn::backend::Reference>(r); }
