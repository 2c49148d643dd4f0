#pragma once
// The data preview of the Setup tab: core's DataPreview (the first examples
// as tokens, which are scored, token counts) drawn as rich text, scored
// tokens on green, the others grey; each token's id in its tooltip-free
// subscript so a screenshot shows it.
#include <QString>

#include "core/data/data_preview.h"
#include "core/data/tokenizer.h"

namespace lwb::ui {

QString data_preview_html(const data::DataPreview& preview, const data::Tokenizer& tok);

}  // namespace lwb::ui
