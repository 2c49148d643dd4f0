#pragma once
#include <QString>

namespace lwb::ui {
// Opens the window on the demo preset, trains until `steps` steps are done
// (or the run ends), and saves setup.png, monitor.png, memory.png and
// runs.png into `dir`. For reviewers and the docs; run under Xvfb.
int run_screenshots(int argc, char** argv, const QString& dir, int steps);
}  // namespace lwb::ui
