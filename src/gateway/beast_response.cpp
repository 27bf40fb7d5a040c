#include "gateway/beast_response.hpp"

#include "core/text.hpp"
#include "providers/http_wire.hpp"
#include "providers/write_now.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <iterator>
#include <vector>

namespace llm_caching::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

asio::awaitable<bool> BeastResponse::send(OutgoingResponse response) {
  if (broken_) co_return false;
  const std::string head = providers::response_head(
      response.status, http::obsolete_reason(static_cast<http::status>(response.status)),
      response.headers, response.body.size(), keep_alive());
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head),
                                                     asio::buffer(response.body)};
  error_code ec;
  co_await providers::write_now(stream_, buffers, write_timeout_, ec);
  co_return finish_write(ec);
}

asio::awaitable<bool> BeastResponse::send_prepared(
    std::shared_ptr<const PreparedResponse> prepared) {
  if (broken_) co_return false;
  static constexpr std::string_view kEndKeepAlive = "\r\n";
  static constexpr std::string_view kEndClose = "connection: close\r\n\r\n";
  const std::array<asio::const_buffer, 3> buffers = {
      asio::buffer(prepared->head), asio::buffer(keep_alive() ? kEndKeepAlive : kEndClose),
      asio::buffer(prepared->response.body)};
  // Not write_now, unlike send: under a saturating hit load writing at once gave more hits per
  // second but a higher p99 (docs/perf-log/2026-11-journal.md), and the p99 is the target that
  // binds.
  error_code ec;
  stream_.expires_after(write_timeout_);
  co_await asio::async_write(stream_, buffers, asio::redirect_error(asio::use_awaitable, ec));
  co_return finish_write(ec);
}

asio::awaitable<bool> BeastResponse::send_gathered(int status, Headers headers, GatheredBody body) {
  if (broken_) co_return false;
  const std::string head =
      providers::response_head(status, http::obsolete_reason(static_cast<http::status>(status)),
                               headers, body.size(), keep_alive());
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(body.pieces.size() + 1);
  buffers.emplace_back(head.data(), head.size());
  for (std::string_view piece : body.pieces) {
    if (!piece.empty()) buffers.emplace_back(piece.data(), piece.size());
  }
  // `body` (its owner) lives in this frame until the last byte is written.
  error_code ec;
  co_await providers::write_now(stream_, buffers, write_timeout_, ec);
  co_return finish_write(ec);
}

asio::awaitable<bool> BeastResponse::begin_chunked(int status, Headers headers) {
  if (broken_) co_return false;
  head_.emplace(static_cast<http::status>(status), 11);
  for (auto& [name, value] : headers) head_->set(name, value);
  head_->chunked(true);
  head_->keep_alive(keep_alive());
  serializer_.emplace(*head_);
  error_code ec;
  stream_.expires_after(write_timeout_);
  co_await http::async_write_header(stream_, *serializer_,
                                    asio::redirect_error(asio::use_awaitable, ec));
  co_return finish_write(ec);
}

asio::awaitable<bool> BeastResponse::write_chunk(std::string_view data) {
  if (broken_ || data.empty()) co_return !broken_;
  error_code ec;
  stream_.expires_after(write_timeout_);
  co_await asio::async_write(stream_, http::make_chunk(asio::buffer(data)),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return finish_write(ec);
}

asio::awaitable<bool> BeastResponse::end_chunked(Headers trailers) {
  if (broken_) co_return false;
  http::fields fields;
  for (auto& [name, value] : trailers) fields.set(name, value);
  error_code ec;
  stream_.expires_after(write_timeout_);
  co_await asio::async_write(stream_, http::make_chunk_last(fields),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return finish_write(ec);
}

bool BeastResponse::client_gone() {
  if (broken_) return true;
  char byte = 0;
  const ssize_t n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // a pipelined request waits: the client is there
  if (n == 0) return true;  // end of stream
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

bool BeastResponse::finish_write(const error_code& ec) {
  stream_.expires_never();
  if (ec) broken_ = true;
  return !broken_;
}

namespace {

/// The transfer codings of every Transfer-Encoding field, in order, lowercase.
std::vector<std::string> transfer_codings(const http::request_header<>& head) {
  std::vector<std::string> codings;
  for (const auto& field : head) {
    if (field.name() != http::field::transfer_encoding) continue;
    std::string_view rest = field.value();
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view coding = rest.substr(0, comma);
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
        coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
        coding.remove_suffix(1);
      if (!coding.empty()) codings.push_back(core::lowercase(coding));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return codings;
}

}  // namespace

std::size_t request_line_bytes(const http::request_header<>& head) {
  return head.method_string().size() + 1 + head.target().size() +
         std::string_view(" HTTP/1.1\r\n").size();
}

std::optional<HeadRefusal> check_head(const http::request_header<>& head,
                                      std::optional<std::uint64_t> content_length,
                                      const HeadLimits& limits) {
  if (const std::size_t line = request_line_bytes(head); line > limits.max_request_line) {
    return HeadRefusal{414, Refusal::request_line_too_long,
                       "request line too long (" + std::to_string(line) + " bytes; limit " +
                           std::to_string(limits.max_request_line) + ")"};
  }
  const auto fields = static_cast<std::size_t>(std::distance(head.begin(), head.end()));
  if (fields > limits.max_header_fields) {
    return HeadRefusal{431, Refusal::header_fields,
                       "too many header fields (" + std::to_string(fields) + "; limit " +
                           std::to_string(limits.max_header_fields) + ")"};
  }
  if (head.count(http::field::transfer_encoding) > 0) {
    const std::vector<std::string> codings = transfer_codings(head);
    if (codings.empty() || codings.back() != "chunked") {
      return HeadRefusal{400, Refusal::framing,
                         "Transfer-Encoding must end in chunked (a body that cannot be framed)"};
    }
    if (codings.size() > 1) {
      return HeadRefusal{501, Refusal::framing,
                         "Transfer-Encoding: only chunked is supported, without other codings"};
    }
    if (head.count(http::field::content_length) > 0) {
      return HeadRefusal{400, Refusal::framing,
                         "a request may carry Transfer-Encoding or Content-Length, not both"};
    }
  }
  if (content_length && *content_length > limits.body_limit) {
    return HeadRefusal{
        413, Refusal::body_too_large,
        "request body too large (limit " + std::to_string(limits.body_limit) + " bytes)"};
  }
  return std::nullopt;
}

IncomingRequest head_of(const http::request_header<>& head) {
  IncomingRequest request;
  request.method = std::string(head.method_string());
  request.target = std::string(head.target());
  request.headers.reserve(static_cast<std::size_t>(std::distance(head.begin(), head.end())));
  for (const auto& field : head) {
    request.headers.emplace_back(core::lowercase(field.name_string()), std::string(field.value()));
  }
  return request;
}

}  // namespace llm_caching::gateway
