#include "core/train/report.h"

#include <algorithm>
#include <stdexcept>

namespace lwb {

namespace {

// Display width: UTF-8 continuation bytes take no column ("±", "−").
std::size_t columns(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// Markdown would read a '|' in a cell as a column break.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

void Report::heading(std::string text) { blocks_.push_back({Kind::Heading, {{std::move(text)}}}); }
void Report::paragraph(std::string text) { blocks_.push_back({Kind::Paragraph, {{std::move(text)}}}); }

void Report::bullets(std::vector<std::string> items) {
  Block b{Kind::Bullets, {}};
  for (std::string& i : items) b.rows.push_back({std::move(i)});
  blocks_.push_back(std::move(b));
}

void Report::table(std::vector<std::vector<std::string>> rows) {
  for (const auto& r : rows)
    if (r.size() != rows.front().size()) throw std::invalid_argument("a report table needs rows of equal length");
  blocks_.push_back({Kind::Table, std::move(rows)});
}

void Report::image(std::string file, std::string caption) {
  blocks_.push_back({Kind::Image, {{std::move(file), std::move(caption)}}});
}

void Report::append(const Report& other) { blocks_.insert(blocks_.end(), other.blocks_.begin(), other.blocks_.end()); }

std::string Report::text() const {
  std::string out;
  for (const Block& b : blocks_) {
    if (!out.empty()) out += '\n';
    switch (b.kind) {
      case Kind::Heading: out += b.rows[0][0] + "\n"; break;
      case Kind::Paragraph: out += b.rows[0][0] + "\n"; break;
      case Kind::Bullets:
        for (const auto& r : b.rows) out += "  - " + r[0] + "\n";
        break;
      case Kind::Image: out += "[plot " + b.rows[0][0] + ": " + b.rows[0][1] + "]\n"; break;
      case Kind::Table: {
        std::vector<std::size_t> width(b.rows.front().size(), 0);
        for (const auto& r : b.rows)
          for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], columns(r[c]));
        for (const auto& r : b.rows) {
          std::string line;
          for (std::size_t c = 0; c < r.size(); ++c) {
            if (c) line += "  ";
            line += r[c] + std::string(width[c] - columns(r[c]), ' ');
          }
          while (!line.empty() && line.back() == ' ') line.pop_back();
          out += line + "\n";
        }
        break;
      }
    }
  }
  return out;
}

std::string Report::markdown(const std::string& no_images) const {
  std::string out;
  for (const Block& b : blocks_) {
    if (!out.empty()) out += '\n';
    switch (b.kind) {
      case Kind::Heading:
        out += out.empty() ? "# " : "## ";
        out += b.rows[0][0] + "\n";
        break;
      case Kind::Paragraph: out += b.rows[0][0] + "\n"; break;
      case Kind::Bullets:
        for (const auto& r : b.rows) out += "- " + r[0] + "\n";
        break;
      case Kind::Image:
        out += no_images.empty() ? "![" + b.rows[0][1] + "](" + b.rows[0][0] + ")\n"
                                 : "*(plot " + b.rows[0][0] + ", " + b.rows[0][1] + ": not rendered, " + no_images + ")*\n";
        break;
      case Kind::Table:
        for (std::size_t i = 0; i < b.rows.size(); ++i) {
          out += "|";
          for (const auto& cell : b.rows[i]) {
            out += ' ';
            out += md_cell(cell);
            out += " |";
          }
          out += "\n";
          if (i == 0) {
            out += "|";
            for (std::size_t c = 0; c < b.rows[i].size(); ++c) out += " --- |";
            out += "\n";
          }
        }
        break;
    }
  }
  return out;
}

}  // namespace lwb
