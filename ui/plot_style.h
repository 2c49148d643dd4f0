#pragma once
// Conventions every chart of the window follows, in the window and in the
// PNGs it exports: the legend sits in a row below the axes, never over the
// data; a step axis has whole-number ticks; a log axis is labelled at 1-2-5
// steps, below 1 too; a value range never collapses to a point (a single
// step's loss would otherwise show five identical tick labels); sizes are in
// binary units, labelled (KiB, MiB, GiB).
#include <QColor>
#include <QSharedPointer>
#include <QString>
#include <utility>

class QCustomPlot;
class QCPAxis;
class QCPAxisTicker;
class QCPRange;

namespace lwb::ui {

// Moves the plot's legend out of the axis rect into a new bottom row, its
// entries side by side (wrapping after `columns`).
void put_legend_below(QCustomPlot* plot, int columns = 6);

// Ticks at whole steps (1, 2, 5, 10, 20, 25 ... apart), never at 0.2.
QSharedPointer<QCPAxisTicker> step_ticker();
// Switches an axis between linear and logarithmic scale with readable ticks.
void set_log_axis(QCPAxis* axis, bool log);

// [lo, hi] with a 5% margin (a factor on a log axis); a span of (nearly) zero
// is widened around its value.
QCPRange padded_range(double lo, double hi, bool log);

// The binary unit for sizes up to `bytes`: bytes per unit and its name.
std::pair<double, QString> binary_unit(double bytes);

// The same colour for the same run in every chart and list.
QColor run_color(qint64 run_id);

}  // namespace lwb::ui
