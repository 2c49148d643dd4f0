#include "ui/target_picker.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QPushButton>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <algorithm>
#include <tuple>

namespace lwb::ui {

TargetPicker::TargetPicker(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* boxes = new QHBoxLayout;
  for (Target t : kAllTargets) {
    auto* b = new QCheckBox(QString::fromUtf8(target_short_name(t)));
    b->setObjectName(QString("target_%1").arg(target_short_name(t)));
    boxes_.push_back(b);
    boxes->addWidget(b);
    connect(b, &QCheckBox::toggled, this, &TargetPicker::changed);
  }
  auto* shortcuts = new QHBoxLayout;
  const std::vector<Target> attention = {Target::Q, Target::K, Target::V, Target::O};
  const std::vector<Target> mlp = {Target::Gate, Target::Up, Target::Down};
  const std::vector<Target> all(kAllTargets.begin(), kAllTargets.end());
  for (const auto& [label, name, set] : {std::tuple{tr("attention"), "attention", attention},
                                         std::tuple{tr("MLP"), "mlp", mlp}, std::tuple{tr("all"), "all", all}}) {
    auto* b = new QPushButton(label);
    b->setObjectName(QString("targets_") + name);
    shortcuts->addWidget(b);
    connect(b, &QPushButton::clicked, this, [this, set = set] {
      set_targets(set);
      emit changed();
    });
  }
  shortcuts->addStretch(1);
  layout->addLayout(boxes);
  layout->addLayout(shortcuts);
}

std::vector<Target> TargetPicker::targets() const {
  std::vector<Target> on;
  for (std::size_t i = 0; i < boxes_.size(); ++i)
    if (boxes_[i]->isChecked()) on.push_back(kAllTargets[i]);
  return on;
}

void TargetPicker::set_targets(const std::vector<Target>& targets) {
  for (std::size_t i = 0; i < boxes_.size(); ++i) {
    const QSignalBlocker quiet(boxes_[i]);
    boxes_[i]->setChecked(std::find(targets.begin(), targets.end(), kAllTargets[i]) != targets.end());
  }
}

}  // namespace lwb::ui
