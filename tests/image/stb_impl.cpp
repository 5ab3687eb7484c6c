// The one translation unit of ctnn-test-image that compiles stb_image.
#define CTNN_IMAGE_IMPLEMENTATION
#include <ctnn/io/image.hpp>
