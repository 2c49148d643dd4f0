#pragma once
// Fixture for the include-graph test: a tensor header reaching up into train.
#include "core/train/trainer.h"
