#include "ui/data_preview_view.h"

#include <QObject>

namespace lwb::ui {

namespace {
QString qs(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

QString data_preview_html(const data::DataPreview& p, const data::Tokenizer& tok) {
  QString html = "<div style='font-family: monospace; font-size: 8pt'>";
  for (const data::PreviewExample& e : p.examples) {
    html += QString("<b>%1</b>: %2 tokens, %3 scored%4<br>")
                .arg(qs(e.label).toHtmlEscaped())
                .arg(e.example.tokens.size())
                .arg(e.example.scored_count())
                .arg(e.truncated ? QObject::tr(", truncated") : QString());
    for (std::size_t t = 0; t < e.example.tokens.size(); ++t) {
      const std::int32_t id = e.example.tokens[t];
      const bool scored = e.example.is_scored(t);
      html += QString("<span style='background:%1;color:%2'>%3<sub>%4</sub></span> ")
                  .arg(scored ? "#c7efc0" : "#eeeeee", scored ? "#000000" : "#777777",
                       qs(data::token_text(tok, id)).toHtmlEscaped().replace(' ', "&middot;"))
                  .arg(id);
    }
    html += "<br><br>";
  }
  html += qs(p.summary).toHtmlEscaped() + "<br>";
  html += QObject::tr("%1 example(s) kept for training: %2 tokens, %3 scored (green)")
              .arg(p.kept)
              .arg(p.total_tokens)
              .arg(p.scored_tokens);
  for (const std::string& n : p.notes) html += "<br><span style='color:#b35c00'>" + qs(n).toHtmlEscaped() + "</span>";
  return html + "</div>";
}

}  // namespace lwb::ui
