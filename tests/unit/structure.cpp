// Compile-time facts (parameter counts, shapes, MACs, names) against the
// numbers torchvision reports.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <string>

using namespace ctnn;

// Counts as PyTorch reports them (sum(p.numel() for p in model.parameters())).
static_assert(ResNet18<>::parameter_count == 11'689'512);
static_assert(ResNet34<>::parameter_count == 21'797'672);
static_assert(ResNet50<>::parameter_count == 25'557'032);
static_assert(ResNet101<>::parameter_count == 44'549'160);
static_assert(ResNet152<>::parameter_count == 60'192'808);
static_assert(ResNet18<Linear<512, 10>>::parameter_count == 11'181'642);
static_assert(ResNet18<Sequential<Linear<512, 1>, Sigmoid>>::parameter_count == 11'177'025);
static_assert(ResNet20<Linear<64, 10>>::parameter_count == 272'474);  // option B shortcuts
static_assert(ResNet20<Linear<64, 10>, Image<1, 28, 28>>::parameter_count == 272'474 - 16 * 9 * 2);

// Shapes: the ImageNet nets halve five times, the CIFAR ones twice.
static_assert(ResNet18<Linear<512, 10>, Image<3, 224, 224>>::output_shape() == Shape{10, 1, 1});
static_assert(ResNet50<>::backbone_out(Shape{3, 224, 224}) == Shape{2048, 7, 7});
static_assert(ResNet34<>::backbone_out(Shape{3, 225, 199}) == Shape{512, 8, 7});
static_assert(ResNet20<>::backbone_out(Shape{3, 32, 32}) == Shape{64, 8, 8});
static_assert(ResNet18<>::output_shape().h == 1);

// Multiply-accumulates of convs + fc at 224x224 (forward hooks in torch: 1.814 / 3.664 / 4.089 G).
static_assert(macs<ResNet18<>>(224, 224) / 1'000'000 == 1814);
static_assert(macs<ResNet34<>>(224, 224) / 1'000'000 == 3663);
static_assert(macs<ResNet50<>>(224, 224) / 1'000'000 == 4089);

TEST_CASE("tensor names and shapes follow torchvision's state_dict") {
  Model<ResNet50<>, backend::Reference> model;
  const auto& t = model.tensors();
  // resnet50: 320 state_dict keys = 267 tensors + 53 num_batches_tracked.
  CHECK(t.size() == 267);
  CHECK(t.front().name == "conv1.weight");
  CHECK(t.front().shape == std::vector<std::size_t>{64, 3, 7, 7});
  const auto find = [&](const std::string& n) {
    return std::find_if(t.begin(), t.end(), [&](const TensorInfo& i) { return i.name == n; });
  };
  REQUIRE(find("layer1.0.downsample.0.weight") != t.end());  // Bottleneck: also in layer1
  CHECK(find("layer1.0.downsample.0.weight")->shape == std::vector<std::size_t>{256, 64, 1, 1});
  CHECK(find("layer2.0.conv2.weight")->shape == std::vector<std::size_t>{128, 128, 3, 3});
  CHECK(find("layer4.2.bn3.running_var")->shape == std::vector<std::size_t>{2048});
  CHECK(t.back().name == "fc.bias");
  // Offsets: aligned, in order, non-overlapping.
  for (std::size_t i = 1; i < t.size(); ++i) {
    CHECK(t[i].offset % 16 == 0);
    CHECK(t[i].offset >= t[i - 1].offset + t[i - 1].size);
  }
  CHECK(model.parameter_count() == ResNet50<>::parameter_count);

  Model<ResNet18<Sequential<Linear<512, 1000>, DropoutRatio<1, 2>, Softmax>>, backend::Reference> seq;
  CHECK(seq.tensors()[seq.tensors().size() - 2].name == "fc.0.weight");
  Model<ResNet18<Sequential<Linear<512, 256>, ReLU, Linear<256, 10>>>, backend::Reference> hidden;
  CHECK(hidden.tensors().back().name == "fc.2.bias");
  // ResNet-18 has no downsample in layer1.
  const Model<ResNet18<>, backend::Reference> resnet18;
  const auto& r18 = resnet18.tensors();
  CHECK(r18.size() == 102);
  CHECK(std::none_of(r18.begin(), r18.end(), [](const TensorInfo& i) { return i.name.starts_with("layer1.0.downsample"); }));
}

TEST_CASE("the summary lists torchvision names, shapes, parameters and MACs") {
  Model<ResNet18<Linear<512, 10>>, backend::Reference> model;
  const std::string s = model.summary(224, 224);
  CHECK(s.find("conv1 ") != std::string::npos);
  CHECK(s.find("Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)") != std::string::npos);
  CHECK(s.find("layer4.1.bn2") != std::string::npos);
  CHECK(s.find("[512, 7, 7]") != std::string::npos);
  CHECK(s.find("Linear(in_features=512, out_features=10, bias=True)") != std::string::npos);
  CHECK(s.find("total: 11,181,642 parameters, 1.814 GMACs at 224x224") != std::string::npos);
  const auto rows = layer_rows<ResNet18<Linear<512, 10>>>(224, 224);
  CHECK(rows.front().macs == 118'013'952);  // 112*112*64*3*7*7
}

TEST_CASE("a Linear<In, dynamic> head takes its width at run time") {
  using AnyN = ResNet18<Linear<512, dynamic>>;
  static_assert(AnyN::has_dynamic_classes());
  Model<AnyN, backend::Reference> model(37);
  CHECK(model.classes() == 37);
  CHECK(model.parameter_count() == 11'181'642 - 5130 + 512 * 37 + 37);
  CHECK(model.tensor("fc.weight").size() == 512 * 37);
}

// The rest of torchvision's resnet.py: grouped (ResNeXt) and wide Bottlenecks.
static_assert(ResNeXt50_32x4d<>::parameter_count == 25'028'904);
static_assert(ResNeXt101_32x8d<>::parameter_count == 88'791'336);
static_assert(ResNeXt101_64x4d<>::parameter_count == 83'455'272);
static_assert(WideResNet50_2<>::parameter_count == 68'883'240);
static_assert(WideResNet101_2<>::parameter_count == 126'886'696);
static_assert(ResNeXt50_32x4d<>::ops & op_bit(OpKind::grouped_conv));
static_assert(!(ResNet50<>::ops & op_bit(OpKind::grouped_conv)));
static_assert(!(WideResNet50_2<>::ops & op_bit(OpKind::grouped_conv)));

TEST_CASE("ResNeXt and Wide ResNet: torchvision's tensor names and shapes") {
  Model<ResNeXt50_32x4d<Linear<2048, 10>>, backend::Reference> x(Init::zeros);
  CHECK(x.tensor("layer1.0.conv2.weight").size() == 128u * 4 * 3 * 3);  // [128, 128/32, 3, 3]
  CHECK(x.tensor("layer4.2.bn2.running_var").size() == 1024u);  // width 512 * 4 / 64 * 32
  CHECK(x.tensor("layer4.2.bn3.running_var").size() == 2048u);
  Model<WideResNet50_2<Linear<2048, 10>>, backend::Reference> w(Init::zeros);
  CHECK(w.tensor("layer1.0.conv2.weight").size() == 128u * 128 * 3 * 3);
  CHECK(ResNeXt50_32x4d<>::label() == "ResNet");
  CHECK(Conv<128, 128, 3, 1, 1, false, 32>::label() ==
        "Conv2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=32, bias=False)");
}

// CIFAR option A: zero-padding shortcuts, no parameters (the published recipes' network).
static_assert(ResNet20A<>::parameter_count == 269'722);
static_assert(ResNet56A<>::parameter_count < ResNet56<>::parameter_count);
static_assert(ResNet20A<>::ops & op_bit(OpKind::pad_shortcut));
static_assert(!(ResNet20<>::ops & op_bit(OpKind::pad_shortcut)));
