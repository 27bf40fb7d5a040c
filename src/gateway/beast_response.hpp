// The gateway's ResponseStream over a Beast TCP stream, and the checks a request head must pass
// before its body is read. Internal to the server: only server*.cpp include it (Beast stays out
// of every other header).
#pragma once

#include "gateway/http_types.hpp"
#include "gateway/limits.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace llm_caching::gateway {

class BeastResponse final : public ResponseStream {
 public:
  BeastResponse(boost::beast::tcp_stream& stream, bool request_keep_alive, const bool& draining,
                std::chrono::milliseconds write_timeout)
      : stream_(stream),
        request_keep_alive_(request_keep_alive),
        draining_(draining),
        write_timeout_(write_timeout) {}

  boost::asio::awaitable<bool> send(OutgoingResponse response) override;
  boost::asio::awaitable<bool> send_prepared(
      std::shared_ptr<const PreparedResponse> prepared) override;
  /// Gather I/O: the head, then the pieces where they lie (an embeddings answer is megabytes).
  boost::asio::awaitable<bool> send_gathered(int status, Headers headers,
                                             GatheredBody body) override;
  boost::asio::awaitable<bool> begin_chunked(int status, Headers headers) override;
  boost::asio::awaitable<bool> write_chunk(std::string_view data) override;
  boost::asio::awaitable<bool> end_chunked(Headers trailers) override;
  void abort() override { broken_ = true; }
  /// A peek at the socket: end of stream or an error means the client closed (a client that
  /// half-closes its side after the request counts as gone, as nginx counts it).
  bool client_gone() override;

  /// Whether the connection can carry another request.
  bool reusable() const noexcept { return !broken_ && keep_alive_sent_; }

 private:
  bool keep_alive() {
    keep_alive_sent_ = request_keep_alive_ && !draining_;
    return keep_alive_sent_;
  }
  bool finish_write(const boost::system::error_code& ec);

  boost::beast::tcp_stream& stream_;
  const bool request_keep_alive_;
  const bool& draining_;
  const std::chrono::milliseconds write_timeout_;
  bool broken_ = false;
  bool keep_alive_sent_ = true;
  using EmptyResponse = boost::beast::http::response<boost::beast::http::empty_body>;
  std::optional<EmptyResponse> head_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      serializer_;
};

/// A request the server answers itself, before any route: status, why (for the metric) and
/// the message for the caller.
struct HeadRefusal {
  int status = 400;
  Refusal reason = Refusal::framing;
  std::string message;
};

struct HeadLimits {
  std::size_t max_header_fields = 100;
  std::size_t body_limit = 0;
  std::size_t max_request_line = 8 * 1024;
};

/// The bytes of a head's request line: method, target, version, spaces and CRLF.
std::size_t request_line_bytes(const boost::beast::http::request_header<>& head);

/// The checks a complete head must pass: a request line of at most `max_request_line` bytes
/// (414); at most `max_header_fields` fields; a Transfer-Encoding
/// only as exactly `chunked` (RFC 9112 §6.1: a last coding other than chunked cannot be framed,
/// 400; other codings, 501) and never beside a Content-Length (the shape of request smuggling);
/// a Content-Length within the body limit.
std::optional<HeadRefusal> check_head(const boost::beast::http::request_header<>& head,
                                      std::optional<std::uint64_t> content_length,
                                      const HeadLimits& limits);

/// The request line and the header fields as they were when the head ended, lowercase names.
/// Taken before the body is read: trailer fields of a chunked body, which Beast adds to the same
/// fields, are never headers (RFC 9110 §6.5.2), so nothing after the head is taken.
IncomingRequest head_of(const boost::beast::http::request_header<>& head);

}  // namespace llm_caching::gateway
