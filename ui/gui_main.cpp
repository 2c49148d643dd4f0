#include "ui/gui_main.h"

#include <QApplication>

#include "ui/main_window.h"

namespace lwb::ui {

int run_gui(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("lora-workbench");
  MainWindow window;
  window.resize(1000, 700);
  window.show();
  return QApplication::exec();
}

}  // namespace lwb::ui
