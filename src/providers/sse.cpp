#include "providers/sse.hpp"

#include "llm_caching/errors.hpp"

#include <algorithm>

namespace llm_caching::providers {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  for (char c : bytes) {
    if (c == '\n' && after_cr_) {  // second half of CRLF
      after_cr_ = false;
      continue;
    }
    after_cr_ = false;
    if (c == '\r' || c == '\n') {
      after_cr_ = (c == '\r');
      take_line(out);
      continue;
    }
    if (line_.size() >= max_line_bytes_) {
      throw ProviderError("SSE line longer than " + std::to_string(max_line_bytes_) + " bytes", 200,
                          "invalid_stream", "");
    }
    line_.push_back(c);
    // The BOM may itself arrive split across feeds, so it is checked once 3 bytes are in.
    if (at_start_ && line_.size() == kBom.size()) {
      at_start_ = false;
      if (line_ == kBom) line_.clear();
    } else if (at_start_ && kBom.substr(0, line_.size()) != line_) {
      at_start_ = false;
    }
  }
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  feed(bytes, out);
  return out;
}

void SseParser::take_line(std::vector<SseEvent>& out) {
  at_start_ = false;
  process_line(line_, out);
  line_.clear();
}

void SseParser::process_line(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {
    if (has_data_field_) {
      if (!data_.empty() && data_.back() == '\n') data_.pop_back();
      out.push_back(SseEvent{event_type_.empty() ? std::string("message") : event_type_,
                             std::move(data_), last_id_});
    }
    data_.clear();
    event_type_.clear();
    has_data_field_ = false;
    pending_fields_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line;
  std::string_view value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  pending_fields_ = true;
  if (field == "event") {
    event_type_.assign(value);
  } else if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
    has_data_field_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    if (all_digits(value)) retry_ms_ = std::stoll(std::string(value));
  }
}

bool SseParser::finish() {
  const bool clean = line_.empty() && !pending_fields_;
  line_.clear();
  data_.clear();
  event_type_.clear();
  has_data_field_ = false;
  pending_fields_ = false;
  after_cr_ = false;
  return clean;
}

void append_sse_event(std::string& out, std::string_view data, std::string_view event) {
  if (!event.empty()) {
    out.append("event: ").append(event).push_back('\n');
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t end = data.find_first_of("\r\n", start);
    out.append("data: ").append(data.substr(start, end - start)).push_back('\n');
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out.push_back('\n');
}

std::string format_sse_event(std::string_view data, std::string_view event) {
  std::string out;
  append_sse_event(out, data, event);
  return out;
}

}  // namespace llm_caching::providers
