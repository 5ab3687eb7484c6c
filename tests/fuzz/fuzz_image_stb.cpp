// stb_image for the image fuzzer and the replay test, in a translation unit of
// its own so that it can be compiled with the UBSan checks that stb_image 2.27
// fails on corrupt JPEGs turned off (see CMakeLists.txt: arithmetic only;
// AddressSanitizer stays on, so memory errors in stb are still findings).
#define CTNN_IMAGE_IMPLEMENTATION
#include <ctnn/io/image.hpp>
