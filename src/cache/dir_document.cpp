// The `dir://` entry document: writing it (sorted, indented, nothing volatile) and reading it
// back into the bytes a backend returns. See dir_document.hpp for the format's promises.
#include "cache/dir_document.hpp"

#include "cache/dir_base64.hpp"

#include "core/canonical_json.hpp"
#include "core/entry_signature.hpp"
#include "core/text.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <optional>

namespace llm_caching::cache {
namespace {

namespace json = boost::json;

// ---- writing -------------------------------------------------------------------------------

void append_pretty(std::string& out, const json::value& v, int depth);

void newline(std::string& out, int depth) {
  out.push_back('\n');
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
}

void append_pretty_object(std::string& out, const json::object& o, int depth) {
  if (o.empty()) {
    out.append("{}");
    return;
  }
  std::vector<const json::key_value_pair*> members;
  members.reserve(o.size());
  for (const auto& member : o) members.push_back(&member);
  std::sort(members.begin(), members.end(),
            [](const auto* a, const auto* b) { return detail::utf16_less(a->key(), b->key()); });
  out.push_back('{');
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i > 0) out.push_back(',');
    newline(out, depth + 1);
    detail::append_canonical_string(out, members[i]->key());
    out.append(": ");
    append_pretty(out, members[i]->value(), depth + 1);
  }
  newline(out, depth);
  out.push_back('}');
}

/// Two-space indent, members sorted as RFC 8785 sorts them, scalars as RFC 8785 writes them.
void append_pretty(std::string& out, const json::value& v, int depth) {
  if (depth > detail::max_canonical_depth) {
    throw ConfigurationError("JSON nested too deeply to store");
  }
  if (v.is_object()) return append_pretty_object(out, v.get_object(), depth);
  if (!v.is_array()) return detail::append_canonical_json(out, v);
  const json::array& a = v.get_array();
  if (a.empty()) {
    out.append("[]");
    return;
  }
  out.push_back('[');
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i > 0) out.push_back(',');
    newline(out, depth + 1);
    append_pretty(out, a[i], depth + 1);
  }
  newline(out, depth);
  out.push_back(']');
}

bool is_utf8(std::string_view text) {
  try {
    std::string scratch;
    detail::append_canonical_string(scratch, text);
    return true;
  } catch (const ConfigurationError&) {
    return false;
  }
}

/// A body as the document shows it: parsed when it is a JSON object or array (and `as_json`),
/// else as text, or base64 when not UTF-8; `<name>_as` names the last two.
void put_body(json::object& doc, std::string_view name, std::string_view text,
              const Redactor& redact, bool as_json = true) {
  json::error_code ec;
  json::value parsed = as_json ? parse_json_exact(text, ec) : json::value();
  if (as_json && !ec && (parsed.is_object() || parsed.is_array())) {
    redact.apply_to_strings(parsed);
    doc[name] = std::move(parsed);
  } else if (is_utf8(text)) {
    doc[name] = redact.apply(text);
    doc[std::string(name) + "_as"] = "text";
  } else {
    doc[name] = base64_encode(text);
    doc[std::string(name) + "_as"] = "base64";
  }
}

/// The SSE text as a list of {"event", "data"} objects (data parsed when JSON), or nullopt when
/// the list would not give the stream back: ids, retries, comments, multi-line data, CRs.
std::optional<json::array> sse_events(std::string_view stream, const Redactor& redact) {
  if (stream.find('\r') != std::string_view::npos) return std::nullopt;
  json::array events;
  while (!stream.empty()) {
    const std::size_t end = stream.find("\n\n");
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view block = stream.substr(0, end);
    stream.remove_prefix(end + 2);
    json::object event;
    if (block.starts_with("event: ")) {
      const std::size_t nl = block.find('\n');
      if (nl == std::string_view::npos) return std::nullopt;
      event["event"] = block.substr(7, nl - 7);
      block.remove_prefix(nl + 1);
    }
    if (!block.starts_with("data: ") || block.find('\n') != std::string_view::npos) {
      return std::nullopt;
    }
    const std::string_view data = block.substr(6);
    json::error_code ec;
    json::value parsed = parse_json_exact(data, ec);
    if (!ec && parsed.is_object()) {
      redact.apply_to_strings(parsed);
      event["data"] = std::move(parsed);
    } else {
      if (!is_utf8(data)) return std::nullopt;
      event["data"] = redact.apply(data);
      event["data_as"] = "text";
    }
    events.push_back(std::move(event));
  }
  return events;
}

std::string finish(const json::object& doc) {
  std::string out;
  append_pretty(out, doc, 0);
  out.push_back('\n');
  return out;
}

}  // namespace

std::string entry_document(std::string_view key, const core::CacheEntry& entry,
                           const Redactor& redact, std::string_view mac) {
  json::object doc;
  doc["format"] = !entry.task.empty()     ? kDirDocumentFormatWithTask
                  : entry.request.empty() ? kDirDocumentFormat
                                          : kDirDocumentFormatWithRequest;
  doc["key"] = key;
  doc["provider"] = entry.provider;
  if (!entry.task.empty()) doc["task"] = entry.task;
  if (!entry.request.empty()) {
    put_body(doc, "request", entry.request, redact);
    doc["api"] = entry.api;
    doc["scope_digest"] = entry.scope_digest;
  }
  doc["model"] = entry.model;
  doc["usage"] = {{"input_tokens", entry.usage.input_tokens},
                  {"output_tokens", entry.usage.output_tokens},
                  {"cache_write_tokens", entry.usage.cache_write_tokens},
                  {"cache_read_tokens", entry.usage.cache_read_tokens},
                  {"requests", entry.usage.requests}};
  doc["cost_nano_usd"] = entry.cost_nano_usd;
  // For the reader; cost_nano_usd is what is read back.
  doc["cost_usd"] = nano_usd_to_dollars(entry.cost_nano_usd);
  put_body(doc, "response", entry.response, redact);
  if (!entry.stream.empty()) {
    if (auto events = sse_events(entry.stream, redact)) {
      doc["stream"] = std::move(*events);
    } else {
      put_body(doc, "stream", entry.stream, redact, /*as_json=*/false);
    }
  }
  if (!mac.empty()) doc["mac"] = core::hex(mac);
  return finish(doc);
}

std::string document_task(std::string_view text) {
  json::error_code ec;
  const json::value v = parse_json_exact(text, ec);
  const json::object* doc = ec ? nullptr : v.if_object();
  const json::value* task = doc != nullptr ? doc->if_contains("task") : nullptr;
  return task != nullptr && task->is_string() ? std::string(task->get_string()) : std::string();
}

std::string raw_document(std::string_view key, std::string_view value) {
  json::object doc;
  doc["format"] = kDirDocumentFormat;
  doc["key"] = key;
  doc["value_base64"] = base64_encode(value);
  return finish(doc);
}

namespace {

// ---- reading -------------------------------------------------------------------------------

/// What is wrong with a document, thrown inside parse_document and returned from it.
struct Invalid {
  std::string what;
};

const json::value& field(const json::object& doc, std::string_view name) {
  const json::value* v = doc.if_contains(name);
  if (v == nullptr) throw Invalid{fmt::format("the field \"{}\" is missing", name)};
  return *v;
}

std::string_view string_field(const json::object& doc, std::string_view name) {
  const json::value& v = field(doc, name);
  if (!v.is_string()) throw Invalid{fmt::format("\"{}\" must be a string", name)};
  return v.get_string();
}

std::int64_t int_field(const json::object& doc, std::string_view name) {
  const json::value& v = field(doc, name);
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  throw Invalid{fmt::format("\"{}\" must be a whole number", name)};
}

std::string compact(const json::value& v) {
  std::string out;
  detail::append_canonical_json(out, v);
  return out;
}

/// The bytes of a body written by put_body: `<name>_as` says how.
std::string body_text(const json::object& doc, std::string_view name) {
  const json::value& v = field(doc, name);
  const std::string as_name = std::string(name) + "_as";
  if (!doc.contains(as_name)) {
    if (!v.is_object() && !v.is_array()) {
      throw Invalid{
          fmt::format("\"{}\" must be a JSON object or array, or say how it is kept "
                      "with \"{}\": \"text\" or \"base64\"",
                      name, as_name)};
    }
    return compact(v);
  }
  const std::string_view as = string_field(doc, as_name);
  if (!v.is_string()) throw Invalid{fmt::format("\"{}\" must be a string", name)};
  if (as == "text") return std::string(v.get_string());
  if (as == "base64") {
    if (auto bytes = base64_decode(v.get_string())) return std::move(*bytes);
    throw Invalid{fmt::format("\"{}\" is not valid base64", name)};
  }
  throw Invalid{fmt::format("\"{}\" must be \"text\" or \"base64\"", as_name)};
}

/// The SSE text of a "stream" list written by sse_events.
std::string sse_text(const json::array& events) {
  std::string out;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const json::object* event = events[i].if_object();
    if (event == nullptr) throw Invalid{fmt::format("stream event {} is not an object", i + 1)};
    for (const auto& member : *event) {
      if (member.key() != "event" && member.key() != "data" && member.key() != "data_as") {
        throw Invalid{fmt::format("stream event {} has an unknown field \"{}\"", i + 1,
                                  std::string_view(member.key()))};
      }
    }
    if (event->contains("event"))
      fmt::format_to(std::back_inserter(out), "event: {}\n", string_field(*event, "event"));
    const json::value& data = field(*event, "data");
    if (event->contains("data_as")) {
      if (string_field(*event, "data_as") != "text" || !data.is_string()) {
        throw Invalid{
            fmt::format("stream event {}: \"data_as\" may only be \"text\", with "
                        "\"data\" a string",
                        i + 1)};
      }
      fmt::format_to(std::back_inserter(out), "data: {}\n\n", std::string_view(data.get_string()));
    } else {
      fmt::format_to(std::back_inserter(out), "data: {}\n\n", compact(data));
    }
  }
  return out;
}

constexpr std::string_view kEntryFields[] = {
    "format",   "key",        "provider",    "model",        "usage",     "cost_nano_usd",
    "cost_usd", "response",   "response_as", "stream",       "stream_as", "mac",
    "request",  "request_as", "api",         "scope_digest", "task"};
constexpr std::string_view kRequestFields[] = {"request", "request_as", "api", "scope_digest"};

/// The "mac" field's bytes: 64 hex digits.
std::string mac_of(const json::object& doc) {
  auto mac = core::from_hex(string_field(doc, "mac"));
  if (!mac || mac->size() != core::kEntryMacBytes) {
    throw Invalid{"\"mac\" must be 64 lowercase hex digits"};
  }
  return std::move(*mac);
}

/// The request of a format /2 document, and of a /3 one that has one; a /1 document may not
/// have one. The task of a /3 document, which only it has.
void read_request(const json::object& doc, std::string_view format, core::CacheEntry& entry) {
  const bool with_task = format == kDirDocumentFormatWithTask;
  if (with_task) {
    entry.task = string_field(doc, "task");
    if (entry.task.empty()) throw Invalid{"\"task\" must not be empty"};
  } else if (doc.contains("task")) {
    throw Invalid{fmt::format("\"task\" needs \"format\": \"{}\"", kDirDocumentFormatWithTask)};
  }
  const bool with_request =
      format == kDirDocumentFormatWithRequest || (with_task && doc.contains("request"));
  if (!with_request) {
    for (const std::string_view name : kRequestFields) {
      if (doc.contains(name)) {
        throw Invalid{fmt::format("\"{}\" needs \"request\" and \"format\": \"{}\" or \"{}\"", name,
                                  kDirDocumentFormatWithRequest, kDirDocumentFormatWithTask)};
      }
    }
    return;
  }
  entry.request = body_text(doc, "request");
  if (entry.request.empty()) throw Invalid{"\"request\" must not be empty"};
  entry.api = string_field(doc, "api");
  entry.scope_digest = string_field(doc, "scope_digest");
}

core::CacheEntry entry_of(const json::object& doc, std::string_view format) {
  for (const auto& member : doc) {
    if (std::find(std::begin(kEntryFields), std::end(kEntryFields), member.key()) ==
        std::end(kEntryFields)) {
      throw Invalid{fmt::format("unknown field \"{}\"", std::string_view(member.key()))};
    }
  }
  core::CacheEntry entry;  // created_at 0, no expiry: a recorded answer does not age
  read_request(doc, format, entry);
  entry.provider = string_field(doc, "provider");
  entry.model = string_field(doc, "model");
  const json::value& usage = field(doc, "usage");
  if (!usage.is_object()) throw Invalid{"\"usage\" must be an object"};
  entry.usage.input_tokens = int_field(usage.get_object(), "input_tokens");
  entry.usage.output_tokens = int_field(usage.get_object(), "output_tokens");
  entry.usage.cache_write_tokens = int_field(usage.get_object(), "cache_write_tokens");
  entry.usage.cache_read_tokens = int_field(usage.get_object(), "cache_read_tokens");
  entry.usage.requests = int_field(usage.get_object(), "requests");
  entry.cost_nano_usd = int_field(doc, "cost_nano_usd");
  entry.response = body_text(doc, "response");
  if (const json::value* stream = doc.if_contains("stream")) {
    entry.stream = stream->is_array() && !doc.contains("stream_as") ? sse_text(stream->get_array())
                                                                    : body_text(doc, "stream");
  }
  return entry;
}

}  // namespace

std::variant<ParsedDocument, std::string> parse_document(std::string_view text) {
  json::error_code ec;
  const json::value v = parse_json_exact(text, ec);
  if (ec) return "it is not valid JSON (" + ec.message() + ")";
  if (!v.is_object()) return std::string("it is not a JSON object");
  const json::object& doc = v.get_object();
  try {
    const std::string_view format = string_field(doc, "format");
    if (format != kDirDocumentFormat && format != kDirDocumentFormatWithRequest &&
        format != kDirDocumentFormatWithTask) {
      return fmt::format("its \"format\" is none of \"{}\", \"{}\" and \"{}\"", kDirDocumentFormat,
                         kDirDocumentFormatWithRequest, kDirDocumentFormatWithTask);
    }
    ParsedDocument parsed;
    parsed.key = string_field(doc, "key");
    if (doc.contains("value_base64")) {
      if (doc.size() != 3) throw Invalid{"a value_base64 document has only format, key and value"};
      auto bytes = base64_decode(string_field(doc, "value_base64"));
      if (!bytes) throw Invalid{"\"value_base64\" is not valid base64"};
      parsed.value = std::move(*bytes);
      return parsed;
    }
    parsed.value = core::encode_entry(entry_of(doc, format));
    if (doc.contains("mac")) parsed.value = core::attach_mac(std::move(parsed.value), mac_of(doc));
    return parsed;
  } catch (const Invalid& e) {
    return e.what;
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
}

}  // namespace llm_caching::cache
