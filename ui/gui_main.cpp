#include "ui/gui_main.h"

#include <QApplication>

#include "ui/main_window.h"

namespace lwb::ui {

int run_gui(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("lora-workbench");
  QApplication::setOrganizationName("lora-workbench");
  MainWindow window;
  window.resize(1280, 820);
  window.show();
  return QApplication::exec();
}

}  // namespace lwb::ui
