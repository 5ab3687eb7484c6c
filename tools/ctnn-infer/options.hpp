// ctnn-infer's command line: parsed and validated here, before any file is
// opened, so that every usage mistake gets one clear line on stderr.
#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "networks.hpp"

namespace ctnn_infer {

inline constexpr std::string_view usage_text =
    "usage: ctnn-infer --arch ARCH --weights FILE (--input X.npy | --image FILE...) [options]\n"
    "\n"
    "  --arch ARCH          resnet18 | resnet34 | resnet50 | resnet101 | resnet152 | resnet20 | resnet56\n"
    "  --head HEAD          linear[:N]            Linear (N classes; default: as many as the checkpoint has)\n"
    "                       sigmoid               Linear to 1 output + Sigmoid  (fc.0.*)\n"
    "                       dropout-softmax[:N]   Linear + Dropout(0.5) + Softmax (fc.0.*)\n"
    "                       (default: linear)\n"
    "  --weights FILE       .safetensors or torch.save .pth state_dict (also {'state_dict': ...} /\n"
    "                       {'model': ...} checkpoints), torchvision names, loaded strictly\n"
    "  --input X.npy        N x 3 x H x W array (float32/float64/float16/integers), any H and W\n"
    "  --image FILE...      PNG or JPEG files, preprocessed as torchvision's ImageNet transforms:\n"
    "  --resize N           Resize(N) on the shorter side, PIL bilinear (default 256)\n"
    "  --crop N             CenterCrop(N) (default 224), then ToTensor and ImageNet Normalize\n"
    "  --output Y.npy       write the N x K outputs as float32 .npy\n"
    "  --backend B          reference | cpu | cuda (default: cuda when built with CUDA and a GPU is\n"
    "                       present, otherwise cpu)\n"
    "  --top K              print the K largest outputs per input (default 5 when there is no --output)\n"
    "  --labels FILE        class names, one per line, for --top\n"
    "  --verbose            backend, load and timing details on stderr\n"
    "  --list               print the compiled menu (architecture, head, backend) and exit\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 on success, 1 with a one-line message on stderr for any bad usage or input.\n";

struct Options {
  std::string arch;
  HeadKind head = HeadKind::linear;
  std::optional<std::size_t> classes;
  std::string weights;
  std::string input;                // --input
  std::vector<std::string> images;  // --image
  int resize = 256, crop = 224;
  bool resize_given = false, crop_given = false;
  std::string output;
  std::string backend;              // empty: the default
  std::optional<int> top;
  std::string labels;
  bool verbose = false, help = false, list = false;
};

inline constexpr std::string_view architectures[] = {"resnet18",  "resnet34", "resnet50", "resnet101",
                                                      "resnet152", "resnet20", "resnet56"};

// A positive decimal integer no larger than `max`, or nothing.
inline std::optional<long long> positive(std::string_view s, long long max) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v <= 0 || v > max) return std::nullopt;
  return v;
}

inline void parse_head(Options& o, std::string_view spec) {
  const std::size_t colon = spec.find(':');
  const std::string_view kind = spec.substr(0, colon);
  if (kind == "linear") o.head = HeadKind::linear;
  else if (kind == "sigmoid") o.head = HeadKind::sigmoid;
  else if (kind == "dropout-softmax") o.head = HeadKind::dropout_softmax;
  else
    throw UsageError("bad --head '" + std::string(spec) +
                     "': expected linear[:N], sigmoid or dropout-softmax[:N]");
  o.classes.reset();
  if (colon == std::string_view::npos) return;
  if (o.head == HeadKind::sigmoid)
    throw UsageError("bad --head '" + std::string(spec) + "': the sigmoid head has exactly one output, it takes no :N");
  constexpr long long max_classes = 1 << 24;
  const auto n = positive(spec.substr(colon + 1), max_classes);
  if (!n)
    throw UsageError("bad --head '" + std::string(spec) + "': N must be a whole number from 1 to " +
                     std::to_string(max_classes));
  if (o.head == HeadKind::dropout_softmax && *n < 2)
    throw UsageError("bad --head '" + std::string(spec) + "': a softmax needs at least 2 outputs");
  o.classes = static_cast<std::size_t>(*n);
}

inline Options parse_options(const std::vector<std::string>& args) {
  Options o;
  bool arch_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool inline_value = false;
    if (flag.rfind("--", 0) == 0) {
      if (const auto eq = flag.find('='); eq != std::string::npos) {
        value = flag.substr(eq + 1);
        flag.resize(eq);
        inline_value = true;
      }
    } else {
      throw UsageError("unexpected argument '" + flag + "' (options start with --; see --help)");
    }
    const auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) throw UsageError(flag + " needs a value");
      return args[++i];
    };
    const auto number = [&](long long max) {
      const std::string v = take();
      const auto n = positive(v, max);
      if (!n) throw UsageError(flag + " '" + v + "': expected a whole number from 1 to " + std::to_string(max));
      return static_cast<int>(*n);
    };
    const auto no_value = [&] {
      if (inline_value) throw UsageError(flag + " takes no value");
    };
    if (flag == "--help" || flag == "-h") { no_value(); o.help = true; }
    else if (flag == "--list") { no_value(); o.list = true; }
    else if (flag == "--verbose") { no_value(); o.verbose = true; }
    else if (flag == "--arch") { o.arch = take(); arch_given = true; }
    else if (flag == "--head") parse_head(o, take());
    else if (flag == "--weights") o.weights = take();
    else if (flag == "--input") o.input = take();
    else if (flag == "--output") o.output = take();
    else if (flag == "--labels") o.labels = take();
    else if (flag == "--backend") o.backend = take();
    // 4096 keeps a resized photograph and the network's activations within
    // a few GB; ResNets are trained at 224.
    else if (flag == "--resize") { o.resize = number(4096); o.resize_given = true; }
    else if (flag == "--crop") { o.crop = number(4096); o.crop_given = true; }
    else if (flag == "--top") o.top = number(1 << 24);
    else if (flag == "--image") {
      if (inline_value) {
        o.images.push_back(value);
      } else {
        std::size_t before = o.images.size();
        while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) o.images.push_back(args[++i]);
        if (o.images.size() == before) throw UsageError("--image needs at least one file");
      }
    } else {
      throw UsageError("unknown option '" + flag + "' (see --help)");
    }
  }
  if (o.help || o.list) return o;
  if (!arch_given) throw UsageError("missing --arch (one of resnet18, resnet34, resnet50, resnet101, resnet152, resnet20, resnet56)");
  bool known = false;
  for (auto a : architectures) known |= a == o.arch;
  if (!known)
    throw UsageError("unknown architecture '" + o.arch +
                     "' (choose from resnet18, resnet34, resnet50, resnet101, resnet152, resnet20, resnet56)");
  if (o.weights.empty()) throw UsageError("missing --weights FILE (.safetensors or .pth)");
  if (o.input.empty() == o.images.empty())
    throw UsageError(o.input.empty() ? "missing input: give --input X.npy or --image FILE..."
                                     : "give either --input or --image, not both");
  if (!o.input.empty() && (o.resize_given || o.crop_given))
    throw UsageError("--resize and --crop apply to --image only; an --input array is used as it is");
  if (!o.backend.empty() && o.backend != "reference" && o.backend != "cpu" && o.backend != "cuda")
    throw UsageError("unknown --backend '" + o.backend + "' (choose from reference, cpu, cuda)");
  if (!o.labels.empty() && o.output.empty() && !o.top) o.top = 5;
  if (o.output.empty() && !o.top) o.top = 5;
  return o;
}

}  // namespace ctnn_infer
