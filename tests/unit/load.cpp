// Load policies: strict and backbone-only, with the error messages users see.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <filesystem>
#include <string>

#include "temp_path.hpp"

using namespace ctnn;

namespace {
using Cifar10 = ResNet20<Linear<64, 10>>;
using Cifar2 = ResNet20<Linear<64, 2>>;

io::TensorFile to_file(const std::vector<std::byte>& bytes) { return io::read_safetensors(bytes, "test.safetensors"); }

// A safetensors image of `model` with tensors dropped, renamed or added.
template <class M>
std::vector<std::byte> edited(const M& model, std::string drop = {}, std::string extra = {},
                              io::DType as = io::DType::f32) {
  std::vector<io::TensorToWrite> out;
  std::vector<std::vector<std::uint16_t>> halves;
  halves.reserve(model.tensors().size());
  for (const TensorInfo& t : model.tensors()) {
    if (t.name == drop) continue;
    io::TensorToWrite w{t.name, io::DType::f32, {t.shape.begin(), t.shape.end()},
                        std::as_bytes(model.tensor(t.name))};
    if (as == io::DType::bf16) {  // truncate to bfloat16
      auto& h = halves.emplace_back();
      for (float v : model.tensor(t.name)) h.push_back(static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(v) >> 16));
      w.dtype = io::DType::bf16;
      w.bytes = std::as_bytes(std::span<const std::uint16_t>(h));
    }
    out.push_back(std::move(w));
  }
  static const float one = 1.f;
  if (!extra.empty()) out.push_back({extra, io::DType::f32, {1}, std::as_bytes(std::span<const float>(&one, 1))});
  return io::write_safetensors_to_memory(out);
}
}  // namespace

TEST_CASE("save then strict load reproduces every tensor, via a file and via memory") {
  Model<Cifar10, backend::Reference> a(Init::torchvision, 1), b(Init::torchvision, 2);
  const auto path = ctnn_test::temp_path("load_test.safetensors");
  a.save(path);
  const LoadReport r = b.load(path, Load::strict);
  CHECK(r.loaded.size() == a.tensors().size());
  CHECK(r.unexpected.empty());
  CHECK(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  // The file has what PyTorch's strict load_state_dict wants: num_batches_tracked as I64 scalars.
  const io::TensorFile f = io::read_weights(path);
  const io::TensorRecord* nbt = f.find("layer2.0.downsample.1.num_batches_tracked");
  REQUIRE(nbt != nullptr);
  CHECK(nbt->dtype == io::DType::i64);
  CHECK(nbt->shape.empty());
  std::filesystem::remove(path);

  Model<Cifar10, backend::Reference> c(Init::zeros);
  c.load(to_file(a.save_to_memory()));
  CHECK(std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
}

TEST_CASE("strict: a different head fails, naming the tensor, both shapes and the way out") {
  Model<Cifar10, backend::Reference> ten(Init::torchvision, 1);
  Model<Cifar2, backend::Reference> two(Init::torchvision, 2);
  const std::vector<float> before(two.parameters().begin(), two.parameters().end());
  try {
    two.load(to_file(ten.save_to_memory()), Load::strict);
    FAIL("expected a LoadError");
  } catch (const io::LoadError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("test.safetensors") != std::string::npos);
    CHECK(msg.find("'fc.weight'") != std::string::npos);
    CHECK(msg.find("[10, 64]") != std::string::npos);
    CHECK(msg.find("[2, 64]") != std::string::npos);
    CHECK(msg.find("Load::backbone_only") != std::string::npos);
  }
  // A failed load leaves the model as it was.
  CHECK(std::equal(before.begin(), before.end(), two.parameters().begin()));
}

TEST_CASE("backbone-only: the backbone comes from the file, the head keeps its initialisation") {
  Model<Cifar10, backend::Reference> pretrained(Init::torchvision, 1);
  Model<Cifar2, backend::Reference> tuned(Init::torchvision, 2);
  tuned.init(Init::xavier_uniform, 42, "fc");
  const std::vector<float> head(tuned.tensor("fc.weight").begin(), tuned.tensor("fc.weight").end());
  const LoadReport r = tuned.load(to_file(edited(pretrained, "", "extra.tensor")), Load::backbone_only);
  CHECK(r.kept == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.tensor"});  // reported, not fatal
  CHECK(std::equal(head.begin(), head.end(), tuned.tensor("fc.weight").begin()));
  for (const TensorInfo& t : tuned.tensors()) {
    if (t.name.starts_with("fc.")) continue;
    const auto x = tuned.tensor(t.name), y = pretrained.tensor(t.name);
    CHECK_MESSAGE(std::equal(x.begin(), x.end(), y.begin()), t.name);
  }
  // The backbone's own checks still apply.
  CHECK_THROWS_WITH_AS(tuned.load(to_file(edited(pretrained, "layer3.2.bn1.running_mean")), Load::backbone_only),
                       doctest::Contains("missing: layer3.2.bn1.running_mean [64]"), io::LoadError);
}

TEST_CASE("strict: missing and unknown tensors are errors that name them") {
  Model<Cifar10, backend::Reference> a(Init::torchvision, 1), b;
  CHECK_THROWS_WITH_AS(b.load(to_file(edited(a, "layer1.1.conv2.weight"))),
                       doctest::Contains("layer1.1.conv2.weight [16, 16, 3, 3]"), io::LoadError);
  CHECK_THROWS_WITH_AS(b.load(to_file(edited(a, "", "layer9.weight"))), doctest::Contains("layer9.weight"),
                       io::LoadError);
}

TEST_CASE("BF16 weights are converted on load; other dtypes are refused by name") {
  Model<Cifar10, backend::Reference> a(Init::torchvision, 1), b;
  b.load(to_file(edited(a, "", "", io::DType::bf16)));
  const auto x = a.tensor("layer2.1.conv1.weight"), y = b.tensor("layer2.1.conv1.weight");
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(std::abs(x[i] - y[i]) <= std::abs(x[i]) * (1.0 / 128));

  std::vector<io::TensorToWrite> out;
  std::vector<std::int32_t> ints(10 * 64);
  for (const TensorInfo& t : a.tensors()) {
    io::TensorToWrite w{t.name, io::DType::f32, {t.shape.begin(), t.shape.end()}, std::as_bytes(a.tensor(t.name))};
    if (t.name == "fc.weight") w.dtype = io::DType::i32, w.bytes = std::as_bytes(std::span<const std::int32_t>(ints));
    out.push_back(w);
  }
  CHECK_THROWS_WITH_AS(b.load(to_file(io::write_safetensors_to_memory(out))),
                       doctest::Contains("'fc.weight' has dtype I32"), io::LoadError);
}

TEST_CASE("a Linear<In, dynamic> head reads its class count from the checkpoint") {
  Model<ResNet20<Linear<64, 7>>, backend::Reference> seven(Init::torchvision, 3);
  Model<ResNet20<Linear<64, dynamic>>, backend::Reference> any(1);
  any.load(to_file(seven.save_to_memory()));
  CHECK(any.classes() == 7);
  Tensor x(2, 3, 12, 12);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i % 7) * 0.3f - 1;
  const Tensor ya = Tensor::copy_of(seven.forward(x));
  const Tensor yb = Tensor::copy_of(any.forward(x));
  REQUIRE(yb.shape() == Extents{2, 7, 1, 1});
  CHECK(std::equal(ya.data(), ya.data() + ya.size(), yb.data()));
}

TEST_CASE("a failed strict load of a dynamic head leaves the model exactly as it was, for every failure kind") {
  Model<ResNet20<Linear<64, 7>>, backend::Reference> seven(Init::torchvision, 3);
  Model<ResNet20<Linear<64, dynamic>>, backend::Reference> any(2, Init::torchvision, 5);
  Tensor x(2, 3, 12, 12);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i % 5) * 0.4f - 1;
  const std::vector<float> before(any.parameters().begin(), any.parameters().end());
  const Tensor y_before = Tensor::copy_of(any.forward(x));
  const std::size_t ops_before = any.program().ops.size();

  // Each file has a 7-class head (so the load would re-lay the model out) and one defect.
  std::vector<io::TensorToWrite> wrong_shape, bad_dtype;
  const std::vector<std::int32_t> ints(64, 1);
  for (const TensorInfo& t : seven.tensors()) {
    io::TensorToWrite w{t.name, io::DType::f32, {t.shape.begin(), t.shape.end()}, std::as_bytes(seven.tensor(t.name))};
    io::TensorToWrite s = w;
    if (t.name == "layer1.0.conv1.weight") s.shape = {16, 16, 1, 9};
    wrong_shape.push_back(s);
    if (t.name == "layer3.2.bn2.bias") w = {t.name, io::DType::i32, {64}, std::as_bytes(std::span<const std::int32_t>(ints))};
    bad_dtype.push_back(w);
  }
  const std::pair<std::vector<std::byte>, const char*> failures[] = {
      {edited(seven, "layer2.0.bn1.weight"), "missing"},                       // a tensor missing
      {edited(seven, {}, "layer9.weight"), "the model does not have"},         // an unexpected tensor
      {io::write_safetensors_to_memory(wrong_shape), "has shape [16, 16, 1, 9]"},  // a backbone shape
      {io::write_safetensors_to_memory(bad_dtype), "dtype I32"},               // a conversion failure
  };
  for (const auto& [bytes, message] : failures) {
    INFO(message);
    CHECK_THROWS_WITH_AS(any.load(to_file(bytes), Load::strict), doctest::Contains(message), io::LoadError);
    CHECK(any.classes() == 2);
    CHECK(any.program().ops.size() == ops_before);
    CHECK(std::equal(before.begin(), before.end(), any.parameters().begin(), any.parameters().end()));
    const Tensor y = Tensor::copy_of(any.forward(x));  // the executor still sees the old arena
    CHECK(std::equal(y.data(), y.data() + y.size(), y_before.data(), y_before.data() + y_before.size()));
  }
  any.load(to_file(seven.save_to_memory()));  // and a good file still loads
  CHECK(any.classes() == 7);
}

TEST_CASE("renaming modules on load: a CIFAR script's 'linear' head, nn.DataParallel's 'module.'") {
  Model<Cifar10, backend::Reference> a(Init::torchvision, 1), b(Init::torchvision, 2);
  // Written as the CIFAR ResNet scripts name it: the head is 'linear', every name under 'module.'.
  std::vector<io::TensorToWrite> out;
  std::vector<std::string> names;
  for (const TensorInfo& t : a.tensors()) {
    std::string n = t.name.starts_with("fc.") ? "linear." + t.name.substr(3) : t.name;
    out.push_back({"module." + n, io::DType::f32, {t.shape.begin(), t.shape.end()}, std::as_bytes(a.tensor(t.name))});
  }
  const std::vector<std::byte> bytes = io::write_safetensors_to_memory(out);
  {
    io::TensorFile f = to_file(bytes);
    const std::string e = [&] {
      try { b.load(f); } catch (const io::LoadError& err) { return std::string(err.what()); }
      return std::string();
    }();
    CHECK(e.find("file.rename(\"module\", \"\")") != std::string::npos);
    CHECK(f.rename("module", "") == a.tensors().size());
    CHECK_THROWS_WITH_AS(b.load(f), doctest::Contains("the file's head is called 'linear'"), io::LoadError);
    CHECK(f.rename("linear", "fc") == 2);
    CHECK(f.rename("linear", "fc") == 0);  // nothing left under 'linear'
    b.load(f);
    CHECK(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  }
  {
    io::TensorFile f = to_file(bytes);
    CHECK(f.rename("module.layer1", "layer9") > 0);  // a module path of several parts
    CHECK(f.find("layer9.0.conv1.weight") != nullptr);
    CHECK(f.find("module.layer1.0.conv1.weight") == nullptr);
    CHECK(f.find("module.layer10.0.conv1.weight") == nullptr);
    CHECK_THROWS_WITH_AS(f.rename("module.layer2", "layer9"), doctest::Contains("gives two tensors the name"),
                         io::LoadError);
    CHECK(f.find("layer9.0.conv1.weight") != nullptr);  // a refused rename changes nothing
    CHECK(f.find("module.layer2.0.conv1.weight") != nullptr);
  }
}
