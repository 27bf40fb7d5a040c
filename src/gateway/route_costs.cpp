// GET /costs: the ledger's report (core/ledger.hpp) as JSON, the same as `llm-caching costs
// --json`. Query: since (default 7d), until (default now), by (default total). The records the
// writer still holds are flushed first, so a report counts every request answered before it.
#include "gateway/gateway.hpp"

#include "gateway/route_parts.hpp"

#include <fmt/format.h>

namespace llm_caching::gateway {

namespace asio = boost::asio;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The value of `name` in the target's query, percent-decoded ("" when absent).
std::string query_value(std::string_view target, std::string_view name) {
  const std::size_t mark = target.find('?');
  if (mark == std::string_view::npos) return {};
  std::string_view rest = target.substr(mark + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name || eq == std::string_view::npos) continue;
    std::string out;
    const std::string_view raw = pair.substr(eq + 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 &&
          hex_value(raw[i + 2]) >= 0) {
        out.push_back(static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2])));
        i += 2;
      } else {
        out.push_back(raw[i] == '+' ? ' ' : raw[i]);
      }
    }
    return out;
  }
  return {};
}

}  // namespace

asio::awaitable<void> Gateway::handle_costs(const IncomingRequest& request, ResponseStream& out) {
  const std::int64_t now = exchange::system_now_ms();
  const std::string since_text = query_value(request.target, "since");
  const std::string until_text = query_value(request.target, "until");
  const std::string by_text = query_value(request.target, "by");
  const auto since = core::parse_report_time(since_text.empty() ? "7d" : since_text, now);
  const auto until = until_text.empty() ? std::optional<std::int64_t>(now + 1)
                                        : core::parse_report_time(until_text, now);
  const auto by = core::report_by_from_name(by_text.empty() ? "total" : by_text);
  if (!since || !until || !by) {
    co_await out.send(error_response(
        Provider::openai, 400,
        "expected since and until as 90s, 15m, 12h, 7d, 2w, a date (2026-12-01) or Unix ms, and "
        "by as task, model, tenant, day, tag, outcome, provider, namespace or total"));
    co_return;
  }
  exchange::LedgerWriter* ledger = exchange_->ledger();
  if (ledger == nullptr) {
    co_await out.send(error_response(Provider::openai, 404,
                                     "this gateway keeps no ledger (serve --no-ledger, or a "
                                     "cache backend without one)"));
    co_return;
  }
  ledger->flush();
  std::vector<core::LedgerRecord> records;
  std::string failure;
  try {
    records = co_await exchange_->cache().backend()->ledger_read(*since, *until);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    co_await out.send(error_response(Provider::openai, 503, "cannot read the ledger: " + failure));
    co_return;
  }
  const core::CostReport report = core::build_report(records, *since, *until, *by);
  co_await out.send(typed_response(200, kJson, core::report_json(report)));
}

}  // namespace llm_caching::gateway
