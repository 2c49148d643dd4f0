#pragma once
// Where the workbench keeps its files: $LWB_DATA_DIR, else
// $XDG_DATA_HOME/lora-workbench, else ~/.local/share/lora-workbench.
#include <filesystem>
#include <string>

namespace lwb {

std::filesystem::path user_data_dir();
// A name (an experiment's, an adapter's) as one folder or file name: never a
// path ("/abs", "../x"), no separators, control or shell-awkward characters
// (each becomes '_'), no leading dot, at most 80 bytes; "unnamed" when
// nothing is left.
std::string safe_file_name(const std::string& name);

// The resources folder: $LWB_RESOURCES, else <executable dir>/../../resources
// (the source tree, for a build folder inside it), else
// <executable dir>/../share/lora-workbench/resources (installed). Empty when
// none exists.
std::filesystem::path resources_dir();

}  // namespace lwb
