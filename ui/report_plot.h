#pragma once
// Draws the plots of a study's report (core/study/study.h's PlotSpec) with
// QCustomPlot: bars per category, grouped or stacked, with 95% error bars
// (QCPErrorBars) where the spec has them. The Studies view shows them and the
// CLI's `study` saves them as PNG files, offscreen.
#include <QByteArray>
#include <vector>

#include "core/study/study.h"

class QCustomPlot;

namespace lwb::ui {

// Replaces what `plot` shows with the spec's bars.
void draw_plot(QCustomPlot* plot, const PlotSpec& spec);
// The plot as PNG bytes at width × height pixels; needs a QApplication.
QByteArray render_plot_png(const PlotSpec& spec, int width = 900, int height = 540);
// Every plot as a PNG file named by PlotSpec::file. A program without a
// QApplication (the CLI) gets one on the offscreen platform while this runs
// (QT_QPA_PLATFORM=offscreen unless the environment names another), so no
// display is needed.
std::vector<ComparisonFile> render_study_plots(const std::vector<PlotSpec>& plots);

}  // namespace lwb::ui
