// SPDX-License-Identifier: Apache-2.0
// The daemon's client: one HTTP request per call, every answer read into a bounded buffer
// within a deadline, every failure one Error that says what was tried and what to do.
#include <dstackvmm/client/vmm_client.hpp>

#include <sys/socket.h>

#include <filesystem>
#include <thread>

#include <httplib.h>

#include "base/json_limits.hpp"
#include "base/text_util.hpp"
#include "client/json_reply.hpp"
#include "wire/json_codec.hpp"

namespace dstackvmm::client {

namespace {

using Clock = std::chrono::steady_clock;

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The reply's error, in the library's codes.
Error remote_error(int http_status, const httplib::Headers& headers, const std::string& body) {
  std::string message = body;
  auto j = internal::parse_json(body);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) message = j["error"].get<std::string>();
  if (message.empty()) message = "the daemon answered HTTP " + std::to_string(http_status);
  if (http_status == 401)
    return make_error(ErrorCode::kUnauthenticated,
                      "the daemon refused the credentials (HTTP 401): pass --token (DSTACK_VMM_TOKEN) or "
                      "--auth-user/--auth-password");
  if (auto it = headers.find("X-Error-Code"); it != headers.end())
    return make_error(error_code_from_name(it->second), message);
  // An upstream daemon says only 400; its "not found" messages are the ones a script tells apart.
  if (http_status == 404 || message.find("not found") != std::string::npos)
    return make_error(ErrorCode::kNotFound, message);
  return make_error(ErrorCode::kFailedPrecondition, message);
}

}  // namespace

struct DSTACKVMM_HIDDEN VmmClient::Impl {
  ClientOptions options;
  std::string unix_path;  // set for unix: URLs

  std::unique_ptr<httplib::Client> connect(std::chrono::milliseconds read_timeout) const {
    std::unique_ptr<httplib::Client> c;
    if (!unix_path.empty()) {
      c = std::make_unique<httplib::Client>(unix_path);
      c->set_address_family(AF_UNIX);
    } else {
      c = std::make_unique<httplib::Client>(options.url);
      c->enable_server_certificate_verification(false);  // as upstream's CLI
    }
    auto secs = [](std::chrono::milliseconds ms) { return std::pair<time_t, time_t>(ms.count() / 1000, (ms.count() % 1000) * 1000); };
    auto [cs, cus] = secs(options.connect_timeout);
    c->set_connection_timeout(cs, cus);
    auto [rs, rus] = secs(read_timeout);
    c->set_read_timeout(rs, rus);
    c->set_write_timeout(rs, rus);
    if (!options.token.empty())
      c->set_bearer_token_auth(options.token);
    else if (!options.auth_user.empty() || !options.auth_password.empty())
      c->set_basic_auth(options.auth_user, options.auth_password);
    return c;
  }

  Error unreachable(httplib::Error err) const {
    std::string why = err == httplib::Error::Connection          ? "nothing accepts connections there"
                      : err == httplib::Error::ConnectionTimeout ? "connecting timed out"
                      : err == httplib::Error::SSLConnection     ? "the TLS handshake failed"
                      : err == httplib::Error::Read              ? "the connection closed without an answer"
                                                                 : httplib::to_string(err);
    if (!unix_path.empty()) {
      std::error_code ec;
      if (!std::filesystem::exists(unix_path, ec)) why = "no socket at " + unix_path;
    }
    if (options.peer != "the daemon")
      return make_error(ErrorCode::kUnavailable, "cannot reach " + options.peer + " at " + options.url + " (" + why + ")");
    return make_error(ErrorCode::kUnavailable,
                      "cannot reach the daemon at " + options.url + " (" + why +
                          "); is dstack-vmm running there? Point --url or DSTACK_VMM_URL at it (`vmmctl vmm ls` lists local daemons)");
  }

  // One request; `sink` gets the body as it arrives when given (and the reply then has no
  // body), else the body is collected, bounded, into the result.
  Result<httplib::Response> send(httplib::Request req, std::chrono::milliseconds total,
                                 const std::function<bool(std::string_view)>& sink = {}, bool any_status = false) const {
    auto client = connect(total);
    auto deadline = Clock::now() + total;
    std::string body;
    bool too_big = false, late = false;
    int status = 0;
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (!sink && Clock::now() > deadline) return !(late = true);
      if (sink && status == 200) return sink(std::string_view(data, n));
      if (body.size() + n > options.max_reply_bytes) return !(too_big = true);
      body.append(data, n);
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool sent = client->send(req, res, err);
    if (too_big)
      return make_error(ErrorCode::kUnavailable, options.peer + "'s answer to " + req.path + " is larger than " +
                                                     std::to_string(options.max_reply_bytes >> 20) + " MiB");
    if (late)
      return make_error(ErrorCode::kUnavailable,
                        options.peer + " did not answer " + req.path + " within " + std::to_string(total.count()) + " ms");
    if (!sent && err == httplib::Error::Canceled && sink && status == 200) return httplib::Response{};  // the sink said stop
    if (!sent) {
      if (status == 0) return unreachable(err);  // no answer at all
      if (sink && status == 200) return httplib::Response{};  // the stream ended without a last chunk
      return make_error(ErrorCode::kUnavailable, options.peer + "'s answer to " + req.path + " broke off: " + httplib::to_string(err));
    }
    res.body = std::move(body);
    if (res.status != 200 && !any_status) return remote_error(res.status, res.headers, res.body);
    return res;
  }

  Result<Json> rpc(std::string_view mount, std::string_view method, const Json& input) const {
    httplib::Request req;
    req.method = "POST";
    req.path = std::string(mount) + std::string(method) + "?json";
    req.body = input.is_null() ? "{}" : input.dump(-1, ' ', false, Json::error_handler_t::replace);
    req.set_header("Content-Type", "application/json");
    auto res = send(std::move(req), options.timeout);
    if (!res.ok()) return res.error();
    if (res->body.empty()) return Json(nullptr);
    std::string why;
    Json j = internal::parse_json(res->body, {options.max_reply_bytes, 64}, &why);
    if (j.is_discarded())
      return make_error(ErrorCode::kUnavailable, options.peer + "'s answer to " + std::string(method) + " is not JSON: " + why);
    return j;
  }
  Result<Json> prpc(std::string_view method, const Json& input = nullptr) const;
};

VmmClient::VmmClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VmmClient::VmmClient(VmmClient&&) noexcept = default;
VmmClient& VmmClient::operator=(VmmClient&&) noexcept = default;
VmmClient::~VmmClient() = default;

Result<VmmClient> VmmClient::create(ClientOptions options) {
  auto impl = std::make_unique<Impl>();
  const std::string& url = options.url;
  if (starts_with(url, "unix:")) {
    impl->unix_path = url.substr(5);
    if (starts_with(impl->unix_path, "//")) impl->unix_path = impl->unix_path.substr(2);  // unix://path
    if (impl->unix_path.empty())
      return make_error(ErrorCode::kInvalidArgument, "URL '" + url + "' names no socket: write unix:/path/to/vmm.sock");
  } else if (!starts_with(url, "http://") && !starts_with(url, "https://")) {
    return make_error(ErrorCode::kInvalidArgument,
                      "URL '" + url + "' is not one vmmctl knows: use unix:/path/to/vmm.sock, http://host:port or https://host:port");
  } else if (url.find('/', url.find("//") + 2) != std::string::npos && url.back() != '/') {
    return make_error(ErrorCode::kInvalidArgument, "URL '" + url + "' has a path; give only scheme, host and port");
  }
  if (options.timeout.count() <= 0 || options.connect_timeout.count() <= 0)
    return make_error(ErrorCode::kInvalidArgument, "timeouts must be positive");
  impl->options = std::move(options);
  if (impl->unix_path.empty() && impl->options.url.back() == '/') impl->options.url.pop_back();
  return VmmClient(std::move(impl));
}

const ClientOptions& VmmClient::options() const { return impl_->options; }

namespace {
// A reply as the text the public API hands out: compact, bytes that are not UTF-8 replaced.
Result<std::string> text(const Result<Json>& r) {
  if (!r.ok()) return r.error();
  return r->dump(-1, ' ', false, Json::error_handler_t::replace);
}
}  // namespace

Result<Json> parse_reply(const Result<std::string>& reply) {
  if (!reply.ok()) return reply.error();
  std::string why;
  Json j = internal::parse_json(*reply, {std::max<size_t>(reply->size(), 1), 256}, &why);
  if (j.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "the reply is not JSON: " + why);
  return j;
}

Result<std::string> VmmClient::call(std::string_view method, std::string_view input_json) const {
  Json input;
  if (!input_json.empty()) {
    std::string why;
    input = internal::parse_json(input_json, {impl_->options.max_reply_bytes, 64}, &why);
    if (input.is_discarded()) return make_error(ErrorCode::kInvalidArgument, "the input to " + std::string(method) + " is not JSON: " + why);
  }
  return text(impl_->rpc("/prpc/", method, input));
}

Result<std::string> VmmClient::guest(std::string_view method, const std::string& id) const {
  return text(impl_->rpc("/guest/", method, Json{{"id", id}}));
}

Result<Json> VmmClient::Impl::prpc(std::string_view method, const Json& input) const { return rpc("/prpc/", method, input); }

namespace {
Status no_value(const Result<Json>& r) { return r.ok() ? Status() : Status(r.error()); }
Result<std::string> string_field(const Result<Json>& r, const char* key) {
  if (!r.ok()) return r.error();
  if (!r->is_object() || !(*r)[key].is_string())
    return make_error(ErrorCode::kUnavailable, std::string("the daemon's answer has no `") + key + "`");
  return (*r)[key].get<std::string>();
}
}  // namespace

Result<std::string> VmmClient::create_vm(const VmConfiguration& config) const {
  return string_field(impl_->prpc("CreateVm", wire::encode_vm_configuration(config)), "id");
}
Status VmmClient::start_vm(const std::string& id) const { return no_value(impl_->prpc("StartVm", {{"id", id}})); }
Status VmmClient::stop_vm(const std::string& id) const { return no_value(impl_->prpc("StopVm", {{"id", id}})); }
Status VmmClient::shutdown_vm(const std::string& id) const { return no_value(impl_->prpc("ShutdownVm", {{"id", id}})); }
Status VmmClient::remove_vm(const std::string& id) const { return no_value(impl_->prpc("RemoveVm", {{"id", id}})); }
Result<std::string> VmmClient::update_vm(const VmUpdate& u) const {
  return string_field(impl_->prpc("UpdateVm", wire::encode_vm_update(u)), "id");
}
Result<std::string> VmmClient::upgrade_app(const VmUpdate& u) const {
  return string_field(impl_->prpc("UpgradeApp", wire::encode_vm_update(u)), "id");
}

Status VmmClient::resize_vm(const std::string& id, std::optional<uint32_t> vcpu, std::optional<uint32_t> memory_mb,
                            std::optional<uint32_t> disk_gb, std::optional<std::string> image) const {
  Json in{{"id", id}};
  if (vcpu) in["vcpu"] = *vcpu;
  if (memory_mb) in["memory"] = *memory_mb;
  if (disk_gb) in["disk_size"] = *disk_gb;
  if (image) in["image"] = *image;
  return no_value(impl_->prpc("ResizeVm", in));
}

Result<std::string> VmmClient::compose_hash(const std::string& name, const std::string& compose_file) const {
  return string_field(impl_->prpc("GetComposeHash", {{"name", name}, {"compose_file", compose_file}}), "hash");
}

Result<std::string> VmmClient::status(const StatusQuery& q) const {
  return text(impl_->prpc("Status", {{"ids", q.ids}, {"brief", q.brief}, {"keyword", q.keyword}, {"page", q.page}, {"page_size", q.page_size}}));
}

Result<std::vector<VmInfo>> VmmClient::vms(const StatusQuery& q) const {
  auto r = parse_reply(status(q));
  if (!r.ok()) return r.error();
  std::vector<VmInfo> out;
  try {
    for (const auto& vm : field_array(*r, "vms")) out.push_back(wire::decode_vm_info(vm));
  } catch (const wire::DecodeError& e) {
    return make_error(ErrorCode::kUnavailable, impl_->options.peer + "'s VmInfo does not read: " + e.what());
  }
  return out;
}

Result<std::optional<std::string>> VmmClient::info(const std::string& id) const {
  auto r = impl_->prpc("GetInfo", {{"id", id}});
  if (!r.ok()) return r.error();
  if (!r->is_object() || !field_bool(*r, "found") || !(*r)["info"].is_object()) return std::optional<std::string>();
  return std::optional<std::string>(*text((*r)["info"]));
}

Result<std::string> VmmClient::launches(const std::string& id) const {
  auto r = impl_->prpc("GetInfo", {{"id", id}});
  if (!r.ok()) return r.error();
  if (!r->is_object() || !field_bool(*r, "found")) return make_error(ErrorCode::kNotFound, "VM not found: " + id);
  auto it = r->find("launches");
  return text(it != r->end() && it->is_array() ? *it : Json::array());
}

Result<std::string> VmmClient::check_host() const { return text(impl_->prpc("CheckHost")); }

Result<std::string> VmmClient::list_images() const { return text(impl_->prpc("ListImages")); }
Result<std::string> VmmClient::app_env_encrypt_pub_key(std::string_view app_id_hex) const {
  return text(impl_->prpc("GetAppEnvEncryptPubKey", {{"app_id", std::string(app_id_hex)}}));
}
Result<EnvKeyResponse> VmmClient::env_key(std::string_view app_id_hex) const {
  auto r = impl_->prpc("GetAppEnvEncryptPubKey", {{"app_id", std::string(app_id_hex)}});
  if (!r.ok()) return r.error();
  EnvKeyResponse key;
  for (auto [name, out] : {std::pair{"public_key", &key.public_key}, std::pair{"signature", &key.signature},
                           std::pair{"signature_v1", &key.signature_v1}}) {
    auto it = r->is_object() ? r->find(name) : r->end();
    if (!r->is_object() || it == r->end() || it->is_null()) continue;
    auto raw = it->is_string() ? from_hex(it->get<std::string>()) : std::nullopt;
    if (!raw) return make_error(ErrorCode::kUnavailable, std::string("the answer's `") + name + "` is not hex");
    *out = *raw;
  }
  if (r->is_object() && (*r).contains("timestamp") && (*r)["timestamp"].is_number_unsigned())
    key.timestamp = (*r)["timestamp"].get<uint64_t>();
  if (key.public_key.size() != 32)
    return make_error(ErrorCode::kUnavailable, "the answer's public key is " + std::to_string(key.public_key.size()) + " bytes, not 32");
  return key;
}

Result<std::string> VmmClient::version() const { return text(impl_->prpc("Version")); }

Result<std::string> VmmClient::health() const {
  httplib::Request req;
  req.method = "GET";
  req.path = "/health";
  auto res = impl_->send(std::move(req), impl_->options.timeout, {}, /*any_status=*/true);
  if (!res.ok()) return res.error();
  std::string why;
  Json j = internal::parse_json(res->body, {1u << 20, 16}, &why);
  if (!j.is_object() || !j.contains("status"))
    return make_error(ErrorCode::kUnavailable, impl_->options.peer + " answered /health with HTTP " + std::to_string(res->status) +
                                                   " and no health document" + (why.empty() ? "" : ": " + why) +
                                                   " (an upstream daemon has no /health)");
  return text(j);
}
Result<std::string> VmmClient::meta() const { return text(impl_->prpc("GetMeta")); }
Result<std::string> VmmClient::list_gpus() const { return text(impl_->prpc("ListGpus")); }
Result<std::string> VmmClient::reload_vms() const { return text(impl_->prpc("ReloadVms")); }
Result<std::string> VmmClient::sv_list() const { return text(impl_->prpc("SvList")); }
Status VmmClient::sv_stop(const std::string& id) const { return no_value(impl_->prpc("SvStop", {{"id", id}})); }
Status VmmClient::sv_remove(const std::string& id) const { return no_value(impl_->prpc("SvRemove", {{"id", id}})); }
Result<std::string> VmmClient::list_registry_images() const { return text(impl_->prpc("ListRegistryImages")); }
Status VmmClient::pull_registry_image(const std::string& tag) const {
  return no_value(impl_->prpc("PullRegistryImage", {{"tag", tag}}));
}
Status VmmClient::delete_image(const std::string& name) const { return no_value(impl_->prpc("DeleteImage", {{"id", name}})); }

Status VmmClient::logs(const LogQuery& q, const std::function<bool(std::string_view)>& sink) const {
  httplib::Request req;
  req.method = "GET";
  req.path = "/logs?id=" + url_encode(q.id) + "&follow=" + (q.follow ? "true" : "false") + "&ansi=" +
             (q.ansi ? "true" : "false") + "&lines=" + std::to_string(q.lines) + "&ch=" + url_encode(q.channel);
  // A follower hears a heartbeat at least every 60 s; silence for twice that is a dead daemon.
  auto r = impl_->send(std::move(req), q.follow ? std::chrono::milliseconds(120000) : impl_->options.timeout, sink);
  return r.ok() ? Status() : Status(r.error());
}

Status VmmClient::events(const EventQuery& q, const std::function<bool(std::string_view)>& sink) const {
  httplib::Request req;
  req.method = "GET";
  req.path = "/events?follow=" + std::string(q.follow ? "true" : "false");
  if (!q.vm.empty()) req.path += "&vm=" + url_encode(q.vm);
  if (q.after) req.path += "&since=" + std::to_string(q.after);
  // Server-Sent Events: blocks of lines ended by a blank line; ours carry one `data:` line of
  // JSON each. A block is bounded, so a hostile server cannot make us buffer without end.
  constexpr size_t kMaxBlock = 1u << 20;
  std::string pending;
  Status failed;
  bool stopped = false;
  auto on_bytes = [&](std::string_view bytes) {
    pending.append(bytes);
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      std::string block = pending.substr(0, end);
      pending.erase(0, end + 2);
      std::string data;
      for (size_t at = 0; at <= block.size();) {
        size_t nl = block.find('\n', at);
        std::string_view line(block.data() + at, (nl == std::string::npos ? block.size() : nl) - at);
        if (line.rfind("data:", 0) == 0) data += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
        if (nl == std::string::npos) break;
        at = nl + 1;
      }
      if (data.empty()) continue;  // a heartbeat comment, or an id/retry line alone
      std::string why;
      Json entry = internal::parse_json(data, {kMaxBlock, 8}, &why);
      if (!entry.is_object()) {
        failed = make_error(ErrorCode::kUnavailable, impl_->options.peer + " sent an event that is not a JSON object: " + why);
        return false;
      }
      if (!sink(*text(entry))) {
        stopped = true;
        return false;
      }
    }
    if (pending.size() > kMaxBlock) {
      failed = make_error(ErrorCode::kUnavailable, impl_->options.peer + " sent an event block over 1 MiB");
      return false;
    }
    return true;
  };
  // A follower hears a heartbeat at least every 15 s; silence for 60 s is a dead daemon.
  auto r = impl_->send(std::move(req), q.follow ? std::chrono::milliseconds(60000) : impl_->options.timeout, on_bytes);
  if (!failed.ok()) return failed;
  if (stopped) return {};
  return r.ok() ? Status() : Status(r.error());
}

Status VmmClient::wait_status(const std::string& id, std::string_view want, std::chrono::milliseconds deadline,
                              const std::function<void(std::string_view)>& progress, std::chrono::milliseconds interval) const {
  auto until = Clock::now() + deadline;
  std::string last;
  for (;;) {
    auto r = info(id);
    if (!r.ok()) return r.error();
    if (!r->has_value()) return make_error(ErrorCode::kNotFound, "VM " + id + " is gone");
    auto vm = parse_reply(**r);
    std::string now = vm.ok() ? field_string(*vm, "status") : "";
    if (progress) progress(**r);
    if (now == want) return {};
    if (Clock::now() + interval > until)
      return make_error(ErrorCode::kFailedPrecondition, "VM " + id + " is " + now + ", not " + std::string(want) +
                                                            ", after " + std::to_string(deadline.count() / 1000) + " s");
    // The wire has no event stream yet; a status poll is what every daemon answers.
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace dstackvmm::client
