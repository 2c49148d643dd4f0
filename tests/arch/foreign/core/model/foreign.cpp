// Fixture for the include-graph test: the engine including Qt.
#include <QString>
