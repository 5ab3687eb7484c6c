// ctnn-train's command line: parsed and checked before any file is read,
// so that every usage mistake is one clear line on stderr and exit status 1.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctnn_train {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::string_view usage_text =
    "usage: ctnn-train --arch ARCH --data DATA [options]\n"
    "\n"
    "network\n"
    "  --arch ARCH            resnet20 | resnet32 | resnet56 | resnet110 (CIFAR family, option B shortcuts),\n"
    "                         resnet20a | resnet32a | resnet56a | resnet110a (option A), resnet18 | resnet34\n"
    "  --head HEAD            linear[:N] (N classes, default: the data's) | sigmoid (one output, needs\n"
    "                         --positive-class); default linear\n"
    "  --from FILE            start from these weights (.safetensors/.pth): the whole model, or with\n"
    "                         --train head / --new-head the backbone only, the head initialised anew\n"
    "  --new-head             keep only the backbone of --from (whole-network fine-tuning with a new head)\n"
    "  --init SCHEME          the new head's initialisation: default | xavier | he (default: xavier for\n"
    "                         sigmoid, PyTorch's default for linear)\n"
    "  --rename FROM=TO       rename tensors of --from under module FROM to TO (e.g. linear=fc,\n"
    "                         module= for nn.DataParallel files); repeatable\n"
    "data\n"
    "  --data DATA            fashion-mnist (Debian's dataset-fashion-mnist), a directory of IDX files\n"
    "                         (train-images-idx3-ubyte[.gz], t10k-...), or of image folders train/ and\n"
    "                         test/ (or val/) with one sub-folder per class\n"
    "  --size S               image folders: Resize(S) + CenterCrop(S) (default 32)\n"
    "  --grey                 image folders: one grey channel instead of RGB\n"
    "  --train-images N       use the first N training images (default: all)\n"
    "  --test-images N        use the first N test images (default: all)\n"
    "  --positive-class C     the class a sigmoid head answers yes to: a name or an index\n"
    "  --augment LIST         crop:P,flip (RandomCrop with P zeros of padding, RandomHorizontalFlip) or none\n"
    "  --prefetch             prepare the next batch on a thread of its own during each step\n"
    "optimisation\n"
    "  --train WHAT           whole (default) | head (backbone frozen, in eval mode; with --augment none\n"
    "                         the backbone's features are computed once and cached)\n"
    "  --epochs N             default 10;  --batch N  default 128;  --seed N  default 1\n"
    "  --optimizer OPT        sgd (default) | adam | adamw\n"
    "  --lr X                 default 0.1 for sgd, 0.001 for adam/adamw\n"
    "  --momentum X           sgd, default 0.9;  --nesterov\n"
    "  --weight-decay X       default 5e-4 (sgd), 0 (adam), 0.01 (adamw)\n"
    "  --no-decay-norm-bias   no weight decay on BatchNorm parameters and biases\n"
    "  --schedule S           constant | cosine (default) | step:EPOCHS:GAMMA | one-cycle\n"
    "  --warmup EPOCHS        linear warm-up from lr/100 over this many epochs (may be fractional)\n"
    "  --label-smoothing X    CrossEntropy label smoothing in [0, 1)\n"
    "  --clip-grad-norm X     clip the gradient's L2 norm to X\n"
    "  --freeze LIST          modules that do not train, e.g. conv1,bn1,layer1\n"
    "  --lr-scale M=X         learning-rate multiplier for module M (e.g. fc=10); repeatable\n"
    "output\n"
    "  --save FILE            the final model (.safetensors, torchvision names)\n"
    "  --best FILE            the model of the epoch with the best test accuracy\n"
    "  --patience N           stop after N epochs without a better test accuracy\n"
    "  --checkpoint FILE      a resumable checkpoint, written after every epoch\n"
    "  --resume FILE          continue a run from its checkpoint (same options)\n"
    "  --stop-after N         train N epochs of the run, then stop (resume later with --resume)\n"
    "  --log FILE             JSON lines, one per epoch;   --curves FILE  loss/accuracy curves (SVG)\n"
    "  --progress P           auto (default: a bar on a terminal, lines otherwise) | bar | lines | quiet\n"
    "  --distributed          data-parallel over the processes of an MPI job (mpirun -np N ctnn-train ...):\n"
    "                         --batch per process, rank 0 prints and writes files (builds with MPI only)\n"
    "  --sync-batch-norm      with --distributed: BatchNorm statistics over the global batch\n"
    "  --list                 print the compiled networks;   --help  this text\n"
    "\n"
    "Every run ends with 'test accuracy: NN.NN%'. Exit status 1 with a one-line message for bad usage or input.\n";

enum class Head { linear, sigmoid };
enum class Optim { sgd, adam, adamw };

struct Options {
  std::string arch, data;
  Head head = Head::linear;
  std::optional<std::size_t> classes;
  std::string from, init, positive_class, augment = "crop:4,flip", schedule = "cosine";
  bool new_head = false, train_head = false, grey = false, nesterov = false, decay_norm_and_bias = true;
  std::vector<std::pair<std::string, std::string>> renames;
  std::size_t size = 32, train_images = 0, test_images = 0, epochs = 10, batch = 128, patience = 0, stop_after = 0;
  std::uint64_t seed = 1;
  Optim optimizer = Optim::sgd;
  std::optional<double> lr, weight_decay;
  double momentum = 0.9, warmup = 0, label_smoothing = 0, clip_grad_norm = 0;
  std::vector<std::string> frozen;
  std::vector<std::pair<std::string, double>> lr_scale;
  std::string save, best, checkpoint, resume, log, curves, progress = "auto";
  bool augment_given = false, help = false, list = false, distributed = false, sync_batch_norm = false, prefetch = false;
  std::vector<std::string> arguments;  // the command line as given (compared across ranks)
};

inline constexpr std::string_view architectures[] = {"resnet20",  "resnet32",  "resnet56",  "resnet110", "resnet20a",
                                                      "resnet32a", "resnet56a", "resnet110a", "resnet18",  "resnet34"};

inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    const std::size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

inline std::optional<long long> whole_number(std::string_view s, long long lo, long long hi) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

inline std::optional<double> real_number(std::string_view s) {
  const std::string copy(s);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

inline Options parse_options(const std::vector<std::string>& args) {
  Options o;
  o.arguments = args;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool inline_value = false;
    if (!flag.starts_with("--")) throw UsageError("unexpected argument '" + flag + "' (options start with --; see --help)");
    if (const auto eq = flag.find('='); eq != std::string::npos) value = flag.substr(eq + 1), flag.resize(eq), inline_value = true;
    const auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= args.size() || args[i + 1].starts_with("--")) throw UsageError(flag + " needs a value");
      return args[++i];
    };
    const auto count = [&](long long lo, long long hi) {
      const std::string v = take();
      const auto n = whole_number(v, lo, hi);
      if (!n) throw UsageError(flag + " '" + v + "': expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
      return static_cast<std::size_t>(*n);
    };
    const auto real = [&](double lo, double hi) {
      const std::string v = take();
      const auto x = real_number(v);
      if (!x || *x < lo || *x > hi)
        throw UsageError(flag + " '" + v + "': expected a number from " + std::to_string(lo) + " to " + std::to_string(hi));
      return *x;
    };
    const auto no_value = [&] {
      if (inline_value) throw UsageError(flag + " takes no value");
    };
    if (flag == "--help" || flag == "-h") no_value(), o.help = true;
    else if (flag == "--list") no_value(), o.list = true;
    else if (flag == "--distributed") no_value(), o.distributed = true;
    else if (flag == "--sync-batch-norm") no_value(), o.sync_batch_norm = true;
    else if (flag == "--prefetch") no_value(), o.prefetch = true;
    else if (flag == "--arch") o.arch = take();
    else if (flag == "--head") {
      const std::string spec = take();
      const auto parts = split(spec, ':');
      if (parts[0] == "sigmoid" && parts.size() == 1) o.head = Head::sigmoid, o.classes.reset();
      else if (parts[0] == "linear" && parts.size() <= 2) {
        o.head = Head::linear;
        o.classes.reset();
        if (parts.size() == 2) {
          const auto n = whole_number(parts[1], 2, 1 << 20);
          if (!n) throw UsageError("bad --head '" + spec + "': N must be a whole number from 2 to 1048576");
          o.classes = static_cast<std::size_t>(*n);
        }
      } else throw UsageError("bad --head '" + spec + "': expected linear[:N] or sigmoid");
    }
    else if (flag == "--from") o.from = take();
    else if (flag == "--new-head") no_value(), o.new_head = true;
    else if (flag == "--init") {
      o.init = take();
      if (o.init != "default" && o.init != "xavier" && o.init != "he")
        throw UsageError("unknown --init '" + o.init + "' (choose from default, xavier, he)");
    }
    else if (flag == "--rename") {
      const std::string spec = take();
      const auto eq = spec.find('=');
      if (eq == std::string::npos || spec.find('=', eq + 1) != std::string::npos || spec.size() == 1)
        throw UsageError("bad --rename '" + spec + "': expected FROM=TO (one side may be empty)");
      o.renames.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
    }
    else if (flag == "--data") o.data = take();
    else if (flag == "--size") o.size = count(1, 1024);
    else if (flag == "--grey" || flag == "--gray") no_value(), o.grey = true;
    else if (flag == "--train-images") o.train_images = count(1, 1LL << 40);
    else if (flag == "--test-images") o.test_images = count(1, 1LL << 40);
    else if (flag == "--positive-class") o.positive_class = take();
    else if (flag == "--augment") o.augment = take(), o.augment_given = true;
    else if (flag == "--train") {
      const std::string v = take();
      if (v != "whole" && v != "head") throw UsageError("unknown --train '" + v + "' (choose from whole, head)");
      o.train_head = v == "head";
    }
    else if (flag == "--epochs") o.epochs = count(1, 100000);
    else if (flag == "--batch") o.batch = count(1, 65536);
    else if (flag == "--seed") o.seed = count(0, 1LL << 62);
    else if (flag == "--optimizer") {
      const std::string v = take();
      if (v == "sgd") o.optimizer = Optim::sgd;
      else if (v == "adam") o.optimizer = Optim::adam;
      else if (v == "adamw") o.optimizer = Optim::adamw;
      else throw UsageError("unknown --optimizer '" + v + "' (choose from sgd, adam, adamw)");
    }
    else if (flag == "--lr") o.lr = real(1e-12, 100);
    else if (flag == "--momentum") o.momentum = real(0, 0.999999);
    else if (flag == "--nesterov") no_value(), o.nesterov = true;
    else if (flag == "--weight-decay") o.weight_decay = real(0, 10);
    else if (flag == "--no-decay-norm-bias") no_value(), o.decay_norm_and_bias = false;
    else if (flag == "--schedule") o.schedule = take();
    else if (flag == "--warmup") o.warmup = real(0, 100000);
    else if (flag == "--label-smoothing") o.label_smoothing = real(0, 0.999);
    else if (flag == "--clip-grad-norm") o.clip_grad_norm = real(1e-12, 1e12);
    else if (flag == "--freeze") {
      for (const std::string& m : split(take(), ','))
        if (m.empty()) throw UsageError("--freeze: an empty module name");
        else o.frozen.push_back(m);
    }
    else if (flag == "--lr-scale") {
      const std::string spec = take();
      const auto eq = spec.find('=');
      const auto x = eq == std::string::npos ? std::nullopt : real_number(spec.substr(eq + 1));
      if (eq == 0 || !x || *x < 0) throw UsageError("bad --lr-scale '" + spec + "': expected MODULE=X with X >= 0");
      o.lr_scale.emplace_back(spec.substr(0, eq), *x);
    }
    else if (flag == "--save") o.save = take();
    else if (flag == "--best") o.best = take();
    else if (flag == "--patience") o.patience = count(1, 100000);
    else if (flag == "--checkpoint") o.checkpoint = take();
    else if (flag == "--resume") o.resume = take();
    else if (flag == "--stop-after") o.stop_after = count(1, 100000);
    else if (flag == "--log") o.log = take();
    else if (flag == "--curves") o.curves = take();
    else if (flag == "--progress") {
      o.progress = take();
      if (o.progress != "auto" && o.progress != "bar" && o.progress != "lines" && o.progress != "quiet")
        throw UsageError("unknown --progress '" + o.progress + "' (choose from auto, bar, lines, quiet)");
    }
    else throw UsageError("unknown option '" + flag + "' (see --help)");
  }
  if (o.help || o.list) return o;
  std::string menu;
  for (auto a : architectures) menu += (menu.empty() ? "" : ", ") + std::string(a);
  if (o.arch.empty()) throw UsageError("missing --arch (one of " + menu + ")");
  bool known = false;
  for (auto a : architectures) known |= a == o.arch;
  if (!known) throw UsageError("unknown architecture '" + o.arch + "' (choose from " + menu + ")");
  if (o.data.empty()) throw UsageError("missing --data (fashion-mnist or a directory)");
  if (o.head == Head::sigmoid && o.positive_class.empty())
    throw UsageError("--head sigmoid answers one yes/no question: name its class with --positive-class");
  if (o.head == Head::linear && !o.positive_class.empty())
    throw UsageError("--positive-class is for --head sigmoid; a linear head predicts every class");
  if ((o.train_head || o.new_head) && o.from.empty())
    throw UsageError(std::string(o.train_head ? "--train head" : "--new-head") + " needs --from FILE (the backbone to keep)");
  if (!o.renames.empty() && o.from.empty()) throw UsageError("--rename applies to --from FILE, which is missing");
  if (!o.init.empty() && o.from.empty() == false && !o.train_head && !o.new_head)
    throw UsageError("--init applies to a new head: with --from, add --new-head or --train head");
  if (o.optimizer != Optim::sgd && o.nesterov) throw UsageError("--nesterov is an SGD option");
  if (o.sync_batch_norm && !o.distributed) throw UsageError("--sync-batch-norm applies to --distributed runs");
  if (o.stop_after && o.checkpoint.empty()) throw UsageError("--stop-after needs --checkpoint FILE to resume from");
  if (!o.resume.empty() && !o.from.empty()) throw UsageError("--resume restores the weights; drop --from");
  return o;
}

}  // namespace ctnn_train
