// Plain request/response types shared by the gateway's routes and its server. No Beast here: the
// routes compile (and are unit-tested) without the HTTP library.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_caching::gateway {

/// Header names are lowercase (the server lowercases what it receives).
using Headers = std::vector<std::pair<std::string, std::string>>;

/// The first header with this lowercase name, or "" when absent.
std::string_view find_header(const Headers& headers, std::string_view lowercase_name);

struct IncomingRequest {
  std::string method;  ///< "GET", "POST", ...
  std::string target;  ///< origin-form: path and query
  Headers headers;
  std::string body;
  std::string_view header(std::string_view lowercase_name) const {
    return find_header(headers, lowercase_name);
  }
};

struct OutgoingResponse {
  int status = 200;
  Headers headers;
  std::string body;
};

/// A body made of pieces that live elsewhere (an embeddings answer: the cached entries' texts and
/// the JSON between them), written with gather I/O rather than joined into one string first.
/// `owner` keeps the pieces' bytes alive until the response is written.
struct GatheredBody {
  std::vector<std::string_view> pieces;
  std::shared_ptr<const void> owner;
  std::size_t size() const noexcept;
  /// The pieces as one string (a stream that cannot gather).
  std::string joined() const;
};

/// A 200 response serialised once, to be written again as bytes (memoised cache hits): the
/// status line and header lines with content-length (`head`, without the blank line that ends
/// the header block), and the body. `response` is the same answer as a plain value.
struct PreparedResponse {
  OutgoingResponse response;
  std::string head;
};

/// Serialises `response` (status 200 only: the status line says "200 OK").
std::shared_ptr<const PreparedResponse> prepare_response(OutgoingResponse response);

/// Where a route writes its answer: one whole response, or a chunked one (SSE relay). Each call
/// returns false when the client is gone; later calls then do nothing.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual boost::asio::awaitable<bool> send(OutgoingResponse response) = 0;
  /// The same answer as send(prepared->response); a stream over a socket writes the prepared
  /// bytes as they are, without serialising headers again.
  virtual boost::asio::awaitable<bool> send_prepared(
      std::shared_ptr<const PreparedResponse> prepared) {
    return send(prepared->response);
  }
  /// A whole response whose body is `body`'s pieces in order. A stream over a socket writes them
  /// as they are (gather I/O, no copy into one buffer); this default joins them and calls send.
  virtual boost::asio::awaitable<bool> send_gathered(int status, Headers headers,
                                                     GatheredBody body);
  virtual boost::asio::awaitable<bool> begin_chunked(int status, Headers headers) = 0;
  virtual boost::asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  virtual boost::asio::awaitable<bool> end_chunked(Headers trailers) = 0;
  /// Whether the client has closed its side of the connection (it will read no answer). Asked
  /// before a retry, never on the way of a hit.
  virtual bool client_gone() { return false; }
  /// The response cannot be completed (a relayed stream broke): close the connection without
  /// the final chunk, so the client sees a truncated answer rather than a complete-looking one.
  virtual void abort() = 0;
};

}  // namespace llm_caching::gateway
