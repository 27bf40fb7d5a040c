// The parts of the plain request/response types that are code (http_types.hpp).
#include "gateway/http_types.hpp"

namespace llm_caching::gateway {

std::size_t GatheredBody::size() const noexcept {
  std::size_t total = 0;
  for (std::string_view piece : pieces) total += piece.size();
  return total;
}

std::string GatheredBody::joined() const {
  std::string out;
  out.reserve(size());
  for (std::string_view piece : pieces) out.append(piece);
  return out;
}

boost::asio::awaitable<bool> ResponseStream::send_gathered(int status, Headers headers,
                                                           GatheredBody body) {
  OutgoingResponse response;
  response.status = status;
  response.headers = std::move(headers);
  response.body = body.joined();
  co_return co_await send(std::move(response));
}

}  // namespace llm_caching::gateway
