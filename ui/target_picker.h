#pragma once
// The seven projections an adapter can target, as check boxes with attention,
// MLP and all shortcuts; the setup form and the planner both use it.
#include <QWidget>
#include <vector>

#include "core/adapters/adapter_config.h"

class QCheckBox;

namespace lwb::ui {

class TargetPicker : public QWidget {
  Q_OBJECT
 public:
  explicit TargetPicker(QWidget* parent = nullptr);
  std::vector<Target> targets() const;  // in kAllTargets order
  // Checks exactly these; emits nothing (the caller already knows).
  void set_targets(const std::vector<Target>& targets);

 signals:
  void changed();  // the user changed the selection (a box or a shortcut)

 private:
  std::vector<QCheckBox*> boxes_;  // kAllTargets order
};

}  // namespace lwb::ui
