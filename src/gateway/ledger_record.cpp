// The ledger record of a provider-route request (ledger_record.hpp).
#include "gateway/ledger_record.hpp"

namespace llm_caching::gateway {

namespace {

/// A header value as stored: printable ASCII only, spaces around commas dropped, at most
/// `limit` bytes (a caller's header must not grow the ledger without bound).
std::string kept(std::string_view value, std::size_t limit) {
  std::string out;
  for (char c : value.substr(0, limit)) {
    if (c < 0x20 || c > 0x7e) continue;
    if (c == ' ' && (out.empty() || out.back() == ',')) continue;
    if (c == ',') {
      while (!out.empty() && out.back() == ' ') out.pop_back();
    }
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

core::LedgerRecord ledger_request(const IncomingRequest& request, Provider provider,
                                  std::string_view model, std::string_view namespace_,
                                  std::string_view tenant_scope) {
  core::LedgerRecord r;
  r.task = kept(request.header("x-llm-task"), 128);
  r.namespace_ = std::string(namespace_);
  r.model = kept(model, 256);
  r.provider = std::string(to_string(provider));
  const std::string_view user = request.header("x-llm-user");
  r.tenant = user.empty() ? std::string(tenant_scope) : kept(user, 128);
  r.tags = kept(request.header("x-llm-tags"), 256);
  r.outcome = core::LedgerOutcome::failed;  // until a result says otherwise
  return r;
}

}  // namespace llm_caching::gateway
