// The compile-cost peer of compile_cost.cpp: a ResNet-18 (torchvision's
// geometry: 7x7/2 stem, 3x3/2 max-pool, four stages of two basic blocks, 1x1/2
// projection shortcuts, global average pool, 1000-way fc) written with dlib's
// DNN templates, built and run once on a 224x224 image so that the translation
// unit instantiates the whole inference path. Not built by CMake; see
// benchmarks/compile_cost.sh. Needs Debian's libdlib-dev.
#include <cstdio>

#include <dlib/dnn.h>
#include <dlib/image_transforms.h>

namespace {

// dlib's default padding is 0 for strided convolutions; torchvision pads
// 3x3/2 by 1 and 7x7/2 by 3, so padding is spelled out everywhere.
template <long Filters, long K, int Stride, int Pad, typename Below>
using conv = dlib::add_layer<dlib::con_<Filters, K, K, Stride, Stride, Pad, Pad>, Below>;

// Networks are written inside-out in dlib: the outermost template runs last.
// BN is a parameter so that one definition serves training (bn_con) and
// inference (affine, BN folded into a per-channel scale and shift).

// conv3x3 -> BN -> ReLU -> conv3x3 -> BN, added to the block input, -> ReLU.
template <long Width, template <typename> class BN, typename Below>
using basic_block = dlib::relu<dlib::add_prev1<
    BN<conv<Width, 3, 1, 1, dlib::relu<BN<conv<Width, 3, 1, 1, dlib::tag1<Below>>>>>>>>;

// The first block of stages 2-4 halves the image and widens it: the shortcut
// is a 1x1/2 conv + BN (tagged 2), the main branch starts again from tag1.
template <long Width, template <typename> class BN, typename Below>
using basic_block_down = dlib::relu<dlib::add_prev2<BN<conv<
    Width, 3, 1, 1,
    dlib::relu<BN<conv<Width, 3, 2, 1, dlib::skip1<dlib::tag2<BN<conv<Width, 1, 2, 0, dlib::tag1<Below>>>>>>>>>>>>;

template <long Width, template <typename> class BN, typename Below>
using stage_first = basic_block<Width, BN, basic_block<Width, BN, Below>>;
template <long Width, template <typename> class BN, typename Below>
using stage_down = basic_block<Width, BN, basic_block_down<Width, BN, Below>>;

template <template <typename> class BN, typename Below>
using stem = dlib::add_layer<dlib::max_pool_<3, 3, 2, 2, 1, 1>, dlib::relu<BN<conv<64, 7, 2, 3, Below>>>>;

template <template <typename> class BN, typename Below>
using backbone = stage_down<512, BN, stage_down<256, BN, stage_down<128, BN, stage_first<64, BN, stem<BN, Below>>>>>;

template <template <typename> class BN>
using resnet18 = dlib::loss_multiclass_log<dlib::fc<1000, dlib::avg_pool_everything<backbone<BN, dlib::input_rgb_image>>>>;

template <typename Below>
using bn_train = dlib::bn_con<Below>;
template <typename Below>
using bn_infer = dlib::affine<Below>;

using training_net = resnet18<bn_train>;
using inference_net = resnet18<bn_infer>;

}  // namespace

int main() {
  dlib::matrix<dlib::rgb_pixel> image(224, 224);
  dlib::rand rng(7);
  for (long r = 0; r < image.nr(); ++r)
    for (long c = 0; c < image.nc(); ++c)
      image(r, c) = dlib::rgb_pixel(rng.get_random_8bit_number(), rng.get_random_8bit_number(),
                                    rng.get_random_8bit_number());

  // The inference network is built from a training one, as a dlib user would
  // after loading or training; weights are dlib's random initialisation.
  training_net trained;
  inference_net net(trained);
  const unsigned long label = net(image);  // allocates, initialises, runs forward
  std::printf("dlib resnet18, %zu layers, 224x224 image -> class %lu\n",
              static_cast<std::size_t>(inference_net::num_layers), label);
  return 0;
}
