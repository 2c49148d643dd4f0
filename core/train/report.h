#pragma once
// A short document built once and rendered twice: as plain text for the
// terminal and as markdown for a stored report. Comparisons and studies write
// their reports with it, so the two forms never say different things.
#include <string>
#include <vector>

namespace lwb {

class Report {
 public:
  void heading(std::string text);
  void paragraph(std::string text);
  void bullets(std::vector<std::string> items);
  // The first row is the header; every row has as many cells.
  void table(std::vector<std::vector<std::string>> rows);
  // A plot stored beside the markdown ("quality.png"); text mode names it.
  void image(std::string file, std::string caption);

  // Another report's blocks after these.
  void append(const Report& other);

  std::string text() const;  // columns aligned with spaces
  // GitHub-flavoured tables. With `no_images` set, a plot's place says it
  // was not rendered and why, instead of linking a missing file.
  std::string markdown(const std::string& no_images = "") const;

 private:
  enum class Kind { Heading, Paragraph, Bullets, Table, Image };
  struct Block {
    Kind kind;
    std::vector<std::vector<std::string>> rows;  // Table; Bullets: one cell per row; others: one cell
  };
  std::vector<Block> blocks_;
};

}  // namespace lwb
