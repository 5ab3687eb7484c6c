// stb_image for this test program's image-folder tests (see io/image.hpp).
#define CTNN_IMAGE_IMPLEMENTATION
#include <ctnn/io/image.hpp>
