// gpu_check: the CUDA backend against the CPU reference, op by op and on a
// whole model (ggml's test-backend-ops, Qt-free so it runs on the GPU host).
//
//   gpu_check                 every group
//   gpu_check --op attention  groups whose name contains "attention"
//   gpu_check --list          the groups
//   gpu_check --verbose       print every row as it completes
//   gpu_check --device N      on cuda:N (default: the first usable device)
//
// Exit: 0 all passed, 1 a check failed, 2 bad usage, 77 no usable CUDA
// device (CTest SKIP_RETURN_CODE).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "gpu/cuda_backend.h"
#include "harness.h"

using namespace lwb;
using namespace lwb::gpucheck;

namespace {

std::vector<Group> all_groups() {
  std::vector<Group> g = op_groups();
  for (Group& m : model_groups()) g.push_back(std::move(m));
  return g;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--list] [--op NAME] [--verbose] [--device N]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> filters;
  bool list = false, verbose = false;
  int device = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list") {
      list = true;
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (a == "--op" && i + 1 < argc) {
      filters.push_back(argv[++i]);
    } else if (a.rfind("--op=", 0) == 0) {
      filters.push_back(a.substr(5));
    } else if (a == "--device" && i + 1 < argc) {
      device = std::atoi(argv[++i]);
    } else {
      return usage(argv[0]);
    }
  }
  const std::vector<Group> groups = all_groups();
  if (list) {
    for (const Group& g : groups) std::printf("%-16s %s\n", g.name.c_str(), g.what.c_str());
    return 0;
  }
  std::vector<const Group*> selected;
  for (const Group& g : groups) {
    bool keep = filters.empty();
    for (const std::string& f : filters) keep = keep || g.name.find(f) != std::string::npos;
    if (keep) selected.push_back(&g);
  }
  if (selected.empty()) {
    std::fprintf(stderr, "gpu_check: no group matches; --list shows them\n");
    return 2;
  }

  const CudaProbe probe = probe_cuda();
  if (probe.devices.empty()) {
    std::printf("SKIP: no CUDA device (%s)\n", probe.reason.c_str());
    return 77;
  }
  if (device < 0) device = probe.devices.front();
  if (std::find(probe.devices.begin(), probe.devices.end(), device) == probe.devices.end()) {
    std::fprintf(stderr, "gpu_check: --device %d is not usable (%s)\n", device,
                 probe.reason.c_str());
    return 2;
  }

  try {
    CpuBackend cpu;
    auto gpu = make_cuda_backend(device, false);
    auto gpu_tf32 = make_cuda_backend(device, true);
    std::printf("gpu_check: %s vs %s\n", gpu->name().c_str(), cpu.name().c_str());
    std::printf("device memory: %.1f GiB free of %.1f GiB\n",
                gpu->device_free_bytes() / 1073741824.0, gpu->device_total_bytes() / 1073741824.0);
    Report report;
    report.verbose = verbose;
    Env env{cpu, *gpu, *gpu_tf32, report};
    for (const Group* g : selected) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::size_t before = report.rows().size();
      guarded_run(report, g->name, [&] { g->run(env); });
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      int failed = 0;
      for (std::size_t i = before; i < report.rows().size(); ++i) failed += !report.rows()[i].pass;
      std::printf("[%-13s] %3zu checks, %d failed, %.1f s\n", g->name.c_str(),
                  report.rows().size() - before, failed, secs);
      std::fflush(stdout);
    }
    report.print_table(false);
    const int failures = report.failures();
    std::printf("SUMMARY: %zu checks, %d failed; GPU allocated bytes at exit of the run: %zu\n",
                report.rows().size(), failures, gpu->allocated_bytes());
    std::printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
}
