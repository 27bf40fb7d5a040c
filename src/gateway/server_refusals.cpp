// How a worker refuses: a request that a limit or a malformed head stops, and a connection
// over --max-connections. Each answer comes in the route's provider format, counted and logged.
#include "gateway/beast_response.hpp"
#include "gateway/controls.hpp"
#include "gateway/server_worker.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

namespace llm_caching::gateway {

asio::awaitable<void> Server::Worker::refuse(Session& session, std::string_view target, int status,
                                             Refusal reason, std::string message) {
  gateway.metrics().refused(reason);
  log_refusal(reason, message);
  const Route route = match_route("POST", target);
  static const bool kNotDraining = false;
  BeastResponse out(session.stream, false, kNotDraining, options.write_timeout);
  OutgoingResponse response{status, {}, error_body(route.provider, status, message)};
  response.headers.emplace_back("content-type", "application/json");
  if (status == 503) response.headers.emplace_back("retry-after", "1");
  co_await out.send(std::move(response));
}

asio::awaitable<void> Server::Worker::refuse_connection(tcp::socket socket) {
  ++refusing;
  gateway.metrics().refused(Refusal::connections);
  const std::string message =
      "too many connections (limit " + std::to_string(options.max_connections) + "); retry shortly";
  log_refusal(Refusal::connections, message);
  // Its head, read for a moment, names the route whose error format the answer takes.
  Session session(std::move(socket));
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8192);
  error_code ec;
  session.stream.expires_after(kRefusalReadTime);
  co_await http::async_read_header(session.stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  const std::string_view target = parser.get().target();
  const Route route = match_route("POST", target.empty() ? std::string_view("/") : target);
  BeastResponse out(session.stream, false, draining, options.write_timeout);
  OutgoingResponse response{503, {}, error_body(route.provider, 503, message)};
  response.headers.emplace_back("content-type", "application/json");
  response.headers.emplace_back("retry-after", "1");
  co_await out.send(std::move(response));
  session.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  session.stream.close();
  --refusing;
}

asio::awaitable<void> Server::Worker::refuse_unread_head(Session& session,
                                                         const RequestParser& parser,
                                                         const error_code& ec) {
  if (ec == http::error::body_limit) {  // a Content-Length above the limit: refused unread
    co_await refuse(
        session, target_of(parser), 413, Refusal::body_too_large,
        "request body too large (limit " + std::to_string(options.body_limit) + " bytes)");
  } else if (ec == http::error::header_limit && parser.get().target().empty()) {
    // The request line alone passed the head's limit.
    co_await refuse(
        session, "/", 414, Refusal::request_line_too_long,
        "request line too long (limit " + std::to_string(options.max_request_line) + " bytes)");
  } else if (ec == http::error::header_limit) {
    co_await refuse(
        session, target_of(parser), 431, Refusal::header_too_large,
        "request headers too large (limit " + std::to_string(options.header_limit) + " bytes)");
  } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
             ec != asio::error::operation_aborted && ec != asio::error::eof &&
             ec != asio::error::connection_reset) {
    co_await refuse(session, target_of(parser), 400, Refusal::framing, "malformed HTTP request");
  }
}

}  // namespace llm_caching::gateway
