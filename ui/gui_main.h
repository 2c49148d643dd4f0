#pragma once
namespace lwb::ui {
// Creates the QApplication and the main window; returns the exit code.
int run_gui(int argc, char** argv);
}  // namespace lwb::ui
