#include "core/train/run_environment.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"
#include "core/cpu/process_settings.h"
#include "lwb_build_info.h"

namespace lwb {

namespace {

using json = nlohmann::json;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

struct Field {
  const char* key;
  const char* label;
  std::string RunEnvironment::*member;
};

constexpr Field kFields[] = {
    {"device", "device", &RunEnvironment::device},
    {"cpu", "CPU", &RunEnvironment::cpu},
    {"blas_core", "BLAS kernels (OpenBLAS core)", &RunEnvironment::blas_core},
    {"blas_coretype", "OPENBLAS_CORETYPE", &RunEnvironment::blas_coretype},
    {"compiler", "compiler", &RunEnvironment::compiler},
    {"flags", "flags", &RunEnvironment::flags},
    {"git", "source (git describe)", &RunEnvironment::git},
};

}  // namespace

RunEnvironment current_environment(const std::string& device, int threads) {
  RunEnvironment e;
  e.device = device;
  e.cpu = cpu_model_name();
  e.blas_core = openblas_core_name();
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) e.blas_coretype = forced;
  e.threads = threads;
  e.compiler = LWB_BUILD_COMPILER;
  e.flags = LWB_BUILD_FLAGS;
  e.git = LWB_BUILD_GIT;
  return e;
}

std::string environment_to_json(const RunEnvironment& e) {
  json j = {{"threads", e.threads}};
  for (const Field& f : kFields) j[f.key] = e.*f.member;
  return j.dump();
}

RunEnvironment environment_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(source, std::string("the run environment is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(source, "the run environment is not a JSON object");
  RunEnvironment e;
  for (const Field& f : kFields)
    if (j.contains(f.key) && j[f.key].is_string()) e.*f.member = j[f.key].get<std::string>();
  if (j.contains("threads") && j["threads"].is_number_integer()) e.threads = j["threads"].get<int>();
  return e;
}

std::string environment_text(const RunEnvironment& e) {
  std::string s;
  for (const Field& f : kFields) {
    if (f.member == &RunEnvironment::blas_coretype && e.blas_coretype.empty()) continue;
    s += std::string(f.label) + ": " + (e.*f.member) + "\n";
    if (f.member == &RunEnvironment::blas_core)
      s += "CPU threads: " + (e.threads > 0 ? std::to_string(e.threads) : std::string("-")) + "\n";
  }
  return s;
}

std::string environment_difference(const RunEnvironment& a, const RunEnvironment& b) {
  std::string d;
  for (const Field& f : kFields)
    if (a.*f.member != b.*f.member)
      d += (d.empty() ? "" : "; ") + std::string(f.label) + " " + (a.*f.member) + " vs " + (b.*f.member);
  if (a.threads != b.threads)
    d += (d.empty() ? "" : "; ") + std::string("threads ") + std::to_string(a.threads) + " vs " + std::to_string(b.threads);
  return d;
}

}  // namespace lwb
