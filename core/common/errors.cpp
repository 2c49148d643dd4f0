#include "core/common/errors.h"

namespace lwb {

std::string cap_message(const std::string& message, std::size_t max_bytes) {
  if (message.size() <= max_bytes) return message;
  std::size_t cut = max_bytes;
  // Back up over UTF-8 continuation bytes so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return message.substr(0, cut) + " ... (message cut: " + std::to_string(message.size() - cut) +
         " more bytes)";
}

}  // namespace lwb
