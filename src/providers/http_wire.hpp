// HTTP/1.1 message heads written straight into one string: the status or request line, the
// header lines and the framing (content-length, connection). Beast's serializer walks its field
// list through chains of buffer views, which cost several times more per message; the client and
// the gateway write every request and answer with these instead. No I/O here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_caching::providers {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// "METHOD target HTTP/1.1", the headers, `host` and `user-agent` unless given, content-length
/// when there is a body or the method sends one (POST, PUT, PATCH), and the blank line.
/// content-length, transfer-encoding and connection in `headers` are dropped: the framing is
/// this function's. Throws ConfigurationError naming a header (never its value: it may be a
/// key) whose name is not an HTTP token or whose value holds a line break or NUL, since either
/// would split or corrupt the request.
std::string request_head(std::string_view method, std::string_view target, std::string_view host,
                         const HeaderList& headers, std::size_t body_size);

/// "HTTP/1.1 status reason", the headers, content-length (except for 1xx, 204 and 304),
/// "connection: close" unless `keep_alive`, and the blank line. Framing headers in `headers`
/// are dropped, as are headers that request_head would refuse (an answer is never split).
std::string response_head(int status, std::string_view reason, const HeaderList& headers,
                          std::size_t body_size, bool keep_alive);

/// The read buffer a connection starts with (client and gateway): room for a typical request or
/// answer in one read. From an empty buffer Beast reads 512 bytes at first, and each further
/// read comes back through the event loop (write_now.hpp says why that matters).
inline constexpr std::size_t kFirstReadBytes = 16 * 1024;

/// Whether `name` is an HTTP token and `value` has no CR, LF or NUL.
bool is_valid_header(std::string_view name, std::string_view value) noexcept;

}  // namespace llm_caching::providers
