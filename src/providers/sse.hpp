// Server-sent events (WHATWG HTML "Server-sent events", §9.2.6 parsing): an incremental parser
// that accepts bytes in arbitrary chunks, and a writer. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::providers {

struct SseEvent {
  std::string event = "message";  ///< the "event:" field; "message" when absent (WHATWG)
  std::string data;               ///< "data:" lines joined with '\n'
  std::string id;                 ///< the last event id seen so far (WHATWG keeps it across events)
  friend bool operator==(const SseEvent&, const SseEvent&) = default;
};

/// Lines end in CRLF, LF or CR (a CRLF split across two feeds counts once); a leading UTF-8 BOM is
/// skipped; lines starting with ':' are comments; an empty line dispatches the event unless it has
/// no data. Unknown fields are ignored.
class SseParser {
 public:
  /// A line longer than this throws ProviderError ("invalid_stream"): bounded memory on garbage.
  explicit SseParser(std::size_t max_line_bytes = 16u << 20) : max_line_bytes_(max_line_bytes) {}

  /// Appends the events completed by `bytes` to `out`.
  void feed(std::string_view bytes, std::vector<SseEvent>& out);
  std::vector<SseEvent> feed(std::string_view bytes);

  /// End of input. Returns true if the stream ended on an event boundary; false if a partial line
  /// or an undispatched event was discarded (WHATWG discards it; callers may call that truncation).
  bool finish();

  /// The last valid "retry:" value.
  std::optional<std::int64_t> retry_ms() const noexcept { return retry_ms_; }

 private:
  void process_line(std::string_view line, std::vector<SseEvent>& out);
  void take_line(std::vector<SseEvent>& out);

  std::size_t max_line_bytes_;
  std::string line_;
  std::string data_;
  std::string event_type_;
  std::string last_id_;
  std::optional<std::int64_t> retry_ms_;
  bool has_data_field_ = false;  ///< a data: line was seen since the last dispatch
  bool pending_fields_ = false;  ///< any field line was seen since the last dispatch
  bool after_cr_ = false;        ///< the previous byte was CR: a following LF ends nothing
  bool at_start_ = true;         ///< BOM check still pending
};

/// Appends one event in wire form: "event: <name>\n" when `event` is not empty, one "data: " line
/// per line of `data` (CRLF, LF and CR all split), then the blank line.
void append_sse_event(std::string& out, std::string_view data, std::string_view event = {});
std::string format_sse_event(std::string_view data, std::string_view event = {});

}  // namespace llm_caching::providers
