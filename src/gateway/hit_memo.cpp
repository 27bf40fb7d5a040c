#include "gateway/hit_memo.hpp"

#include "gateway/controls.hpp"

#include <functional>

namespace llm_caching::gateway {

std::size_t HitMemo::hash_of(std::string_view target, std::string_view body) noexcept {
  const std::size_t h = std::hash<std::string_view>{}(body);
  return h ^ (std::hash<std::string_view>{}(target) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

HitMemo::HitPtr HitMemo::find(std::string_view target, std::string_view body) const {
  const auto found = slots_.find(hash_of(target, body));
  if (found == slots_.end()) return nullptr;
  const Slot& slot = found->second;
  if (slot.target != target || slot.body != body) return nullptr;
  return slot.hit;
}

void HitMemo::remember(std::string_view target, std::string_view body, HitPtr hit) {
  if (body.size() > kMaxBodyBytes || target.size() > kMaxBodyBytes || !hit || !hit->response ||
      hit->response->response.body.size() > kMaxBodyBytes) {
    return;
  }
  const std::size_t hash = hash_of(target, body);
  if (slots_.size() >= kMaxEntries && !slots_.contains(hash)) slots_.clear();
  slots_.insert_or_assign(hash, Slot{std::string(target), std::string(body), std::move(hit)});
}

bool has_default_controls(const Headers& headers) {
  for (const auto& header : headers) {
    const std::string& name = header.first;
    if (name.starts_with("x-llm-") || name == "cache-control") return false;
  }
  // Key material beyond the body and the tenant: the full path derives the key with it.
  return answer_shaping_headers(headers).empty();
}

std::shared_ptr<const PreparedResponse> prepare_response(OutgoingResponse response) {
  auto prepared = std::make_shared<PreparedResponse>();
  std::string& head = prepared->head;
  head.reserve(256);
  head = "HTTP/1.1 200 OK\r\n";
  for (const auto& [name, value] : response.headers) {
    head.append(name).append(": ").append(value).append("\r\n");
  }
  head.append("content-length: ").append(std::to_string(response.body.size())).append("\r\n");
  prepared->response = std::move(response);
  return prepared;
}

}  // namespace llm_caching::gateway
