// SPDX-License-Identifier: Apache-2.0
// The daemon's HTTP transport: listening, routes, shutdown. No VM logic lives here.
#include "server.hpp"

#include "admission.hpp"
#include "events_route.hpp"
#include "head_limit.hpp"
#include "logs_route.hpp"
#include "metrics.hpp"
#include "task_pool.hpp"

#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <chrono>
#include <set>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <dstackvmm/server/auth.hpp>
#include <dstackvmm/log.hpp>
#include <dstackvmm/server/request_guard.hpp>
#include <dstackvmm/server/rpc.hpp>
#include <dstackvmm/server/unix_socket.hpp>
#include <dstackvmm/version.hpp>

#include "base/crypto.hpp"

namespace dstackvmm::daemon {

namespace {
// The pages are compiled in (see meson.build), so the daemon is one file to install.
constexpr unsigned char kConsolePage[] = {
#include "console_index.inc"
};
constexpr unsigned char kApiDocsPage[] = {
#include "console_api_docs.inc"
};
constexpr unsigned char kConsoleScript[] = {
#include "console_console.inc"
};
constexpr unsigned char kApiDocsScript[] = {
#include "console_api_docs_js.inc"
};

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// The page's Content-Security-Policy: its own scripts and the one inline loader (by hash),
// its inline style block (by hash), connections to this daemon only, never framed.
std::string content_security_policy(const std::string& page) {
  auto hash_of = [&](const char* open, const char* close) {
    size_t a = page.find(open), b = a == std::string::npos ? a : page.find(close, a);
    if (a == std::string::npos || b == std::string::npos) return std::string();
    a += std::strlen(open);
    return " 'sha256-" + internal::base64(internal::sha256(page.substr(a, b - a))) + "'";
  };
  return "default-src 'none'; script-src 'self'" + hash_of("<script>", "</script>") + "; style-src" + hash_of("<style>", "</style>") +
         "; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
}
}  // namespace

namespace {
// When this thread began the request it is answering (pre-routing to logger run on one thread).
thread_local std::chrono::steady_clock::time_point request_started;
}  // namespace

namespace {
// Upstream's encoding rules: GET, `?json` (empty, true or 1) or a JSON content type select JSON.
bool json_mode(const httplib::Request& req) {
  if (req.method == "GET") return true;
  if (req.has_param("json")) {
    std::string v = req.get_param_value("json");
    if (v.empty() || v == "true" || v == "1") return true;
  }
  return req.get_header_value("Content-Type").rfind("application/json", 0) == 0;
}
std::string_view query_of(const httplib::Request& req) {
  std::string_view target = req.target;
  auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}
}  // namespace

struct Server::Impl {
  Config config;
  ListenAddress address;
  VmManager& vmm;
  RpcDispatcher rpc;
  Authenticator auth;
  std::optional<RequestGuard> guard;  // once the address is known (bind)
  httplib::Server http;
  FollowerSlots followers;
  RequestMetrics requests{known_routes()};
  ListenBacklog backlog;
  bool bound = false;
  std::atomic<bool> finished{false};
  std::atomic<bool> stopping{false};  // ends /events followers
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  std::set<std::string> known_routes() const {
    std::set<std::string> r{"/", "/health", "/metrics", "/api-docs/openapi.json", "/api-docs/docs", "/res/console.js", "/res/api_docs.js"};
    for (const auto& m : rpc.methods(RpcService::kVmm)) r.insert("/prpc/" + m);
    for (const auto& m : rpc.methods(RpcService::kGuest)) r.insert("/guest/" + m);
    return r;
  }

  Impl(const Config& c, VmManager& m, Authenticator a)
      : config(c), vmm(m), rpc(m), auth(std::move(a)), followers(std::max<uint32_t>(1, c.max_blocking)) {}

  void serve_rpc(RpcService service, const httplib::Request& req, httplib::Response& res) {
    RpcReply reply;
    if (json_mode(req)) {
      std::string query = strip_token_param(query_of(req));  // a token never reaches decoding
      reply = rpc.call(service, req.matches[1].str(), RpcRequest{req.body, query, req.method == "GET"});
    } else {
      reply = rpc.call_protobuf(service, req.matches[1].str(), req.body);
    }
    res.status = reply.status;
    if (!reply.error_code.empty()) res.set_header("X-Error-Code", reply.error_code);
    // Moved, not copied as set_content() would: a listing can be a megabyte.
    res.body = std::move(reply.body);
    res.set_header("Content-Type", reply.content_type);
  }

  // GET /health: 200 when the daemon can do its work, 503 when not (for systemd, orchestrators,
  // `vmmctl health`). No paths, ids or credentials in it.
  void serve_health(httplib::Response& res) {
    ManagerHealth h = vmm.health();
    auto check = [](bool ok, const std::string& error) {
      nlohmann::json c{{"ok", ok}};
      if (!ok) c["error"] = error;
      return c;
    };
    nlohmann::json state = check(h.state_ok, h.state_error);
    state["free_bytes"] = h.state_free_bytes;
    nlohmann::json body{
        {"status", h.ok() ? "ok" : "unhealthy"},
        {"version", api_version()},
        {"rev", git_rev()},
        {"uptime_secs", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count()},
        // Not the launcher's own words: they name the supervisor's socket, which an
        // unauthenticated probe has no business knowing (the log and CheckHost do).
        {"checks", {{"supervisor", check(h.launcher_ok, "the supervisor does not answer; the daemon's log says why")},
                    {"state_folder", state}}},
        {"vms", {{"total", h.vms}, {"running", h.running}}}};
    res.status = h.ok() ? 200 : 503;
    res.set_header("Cache-Control", "no-store");
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  }

  void routes() {
    // Auth covers every route of this server, the console and /logs included.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      head_limit::end_head();
      request_started = std::chrono::steady_clock::now();
      // Browser-origin safety first, whatever the auth setting (request_guard.hpp).
      GuardRequest g;
      g.method = req.method;
      g.path = req.path;
      auto header = [&](const char* name) -> const std::string& {
        auto it = req.headers.find(name);
        static const std::string none;
        return it == req.headers.end() ? none : it->second;
      };
      g.host = header("Host");
      g.origin = header("Origin");
      g.sec_fetch_site = header("Sec-Fetch-Site");
      g.sec_fetch_mode = header("Sec-Fetch-Mode");
      g.content_type = header("Content-Type");
      for (auto [prefix, service] : {std::pair{"/prpc/", RpcService::kVmm}, std::pair{"/guest/", RpcService::kGuest}})
        if (req.path.rfind(prefix, 0) == 0) {
          g.rpc = true;
          g.reads_only = rpc.reads_only(service, std::string_view(req.path).substr(std::string_view(prefix).size()));
        }
      if (auto v = guard->check(g); !v.allowed()) {
        res.status = v.status;
        res.set_header("Connection", "close");
        admission::close_after_response();
        res.set_content(nlohmann::json{{"error", v.message}}.dump(2), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
      AuthRequest a{req.method, req.get_header_value("X-Admin-Token"), req.get_header_value("Authorization"),
                    token_param(query_of(req))};
      // The health probe alone needs no credential: it says nothing a probe should not know.
      bool probe = req.method == "GET" && req.path == "/health";
      if (!probe && !auth.allows(a)) {
        res.status = 401;
        res.set_header("WWW-Authenticate", Authenticator::kChallenge);
        // Answered and closed: a client without credentials never keeps a connection (and
        // the thread that serves it) from those with them.
        res.set_header("Connection", "close");
        admission::close_after_response();
        return httplib::Server::HandlerResponse::Handled;
      }
      // Bodies are capped by Content-Length before they are read (payload_max_length); a
      // chunked or compressed body would slip past that cap (600 KB of gzip became any size),
      // so neither is read at all. Upstream's clients send plain Content-Length bodies.
      std::string refused;
      if (req.has_header("Transfer-Encoding"))
        refused = "Transfer-Encoding is not accepted; send the body with a Content-Length";
      else if (req.has_header("Content-Encoding") && req.get_header_value("Content-Encoding") != "identity")
        refused = "Content-Encoding is not accepted; send the body uncompressed";
      if (refused.empty()) return httplib::Server::HandlerResponse::Unhandled;
      res.status = req.has_header("Transfer-Encoding") ? 411 : 415;
      res.set_header("Connection", "close");  // the unread body must not be taken for a request
      admission::close_after_response();
      res.set_content("{\n  \"error\": \"" + refused + "\"\n}", "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) { serve_health(res); });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
      res.set_content(render_metrics(vmm, requests, up), "text/plain; version=0.0.4; charset=utf-8");
    });
    // After each answer is written: its latency, by route (streams excluded: they last).
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      admission::after_response();
      if (req.path == "/logs" || req.path == "/events") return;
      requests.observe(requests.route(req.path), res.status, std::chrono::steady_clock::now() - request_started);
    });
    http.Get("/logs", [this](const httplib::Request& req, httplib::Response& res) { serve_logs(vmm, followers, req, res); });
    http.Get("/events", [this](const httplib::Request& req, httplib::Response& res) {
      serve_events(vmm, followers, stopping, req, res);
    });
    // Every admitted connection gets a thread at once (admission.hpp caps them), so idle or
    // unauthenticated connections never keep a credentialed call waiting, and followers (at
    // most max_blocking) never take a request's place; beyond `workers`, threads exist only
    // while used.
    size_t workers = std::max<uint32_t>(1, config.workers);
    size_t extra = std::max(admission::kMaxConnections, workers + followers.capacity()) - workers;
    http.new_task_queue = [workers, extra] { return new TaskPool(workers, extra); };
    std::string app_version = "v" + std::string(api_version()) + " (" + std::string(git_rev()) + ")";
    http.set_post_routing_handler([app_version, ident = config.ident](const httplib::Request&, httplib::Response& res) {
      head_limit::begin_head();  // what this connection reads next is the next request's head
      res.set_header("X-App-Version", app_version);
      if (!ident.empty()) res.set_header("Server", ident);  // Rocket's `ident`
      res.set_header("X-Accel-Buffering", "no");
      // Without it Chromium holds back a text/plain stream (a followed /logs) until 512 bytes
      // came, to sniff whether it is binary; the logs view then stays empty.
      res.set_header("X-Content-Type-Options", "nosniff");
    });
    // What only a document needs goes on the documents alone: every header of an API answer
    // is parsed by every client call (Python's http.client takes ~2.5 us a header).
    auto document_headers = [](httplib::Response& res, const std::string& csp) {
      res.set_header("Content-Security-Policy", csp);
      // No page of another site may frame ours (clickjacking the console's buttons).
      res.set_header("X-Frame-Options", "DENY");
      res.set_header("Referrer-Policy", "no-referrer");
    };
    for (auto [prefix, service] : {std::pair{"/prpc/", RpcService::kVmm}, std::pair{"/guest/", RpcService::kGuest}}) {
      auto handler = [this, service = service](const httplib::Request& req, httplib::Response& res) {
        serve_rpc(service, req, res);
      };
      std::string pattern = std::string(prefix) + "([^/]+)";
      http.Get(pattern, handler);
      http.Post(pattern, handler);
    }
    // cpp-httplib answers an oversized body with 413; upstream answers every failure 400, in
    // the encoding the URL and method choose (before dispatch the content type is not looked at).
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status != 413) return;
      bool prpc = req.path.rfind("/prpc/", 0) == 0 || req.path.rfind("/guest/", 0) == 0;
      bool json = req.method == "GET" || (req.has_param("json") && (req.get_param_value("json").empty() ||
                                                                      req.get_param_value("json") == "true" || req.get_param_value("json") == "1"));
      RpcReply r = RpcDispatcher::failure(prpc && !json, "failed to read data: payload too large");
      res.status = 400;
      res.set_content(r.body, r.content_type);
    });
    std::string title = html_escape(config.node_name.empty() ? "dstack-vmm" : config.node_name + " | dstack-vmm");
    std::string page = reinterpret_cast<const char*>(kConsolePage);
    for (size_t at; (at = page.find("{{TITLE}}")) != std::string::npos;) page.replace(at, 9, title);
    std::string csp = content_security_policy(page);
    for (const char* path : {"/", "/v1", "/beta"})
      http.Get(path, [page, csp, document_headers](const httplib::Request&, httplib::Response& res) {
        document_headers(res, csp);
        res.set_content(page, "text/html; charset=utf-8");
      });
    std::string openapi = rpc.openapi_json();
    http.Get("/api-docs/openapi.json", [openapi](const httplib::Request&, httplib::Response& res) {
      res.set_content(openapi, "application/json");
    });
    http.Get("/res/console.js", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(reinterpret_cast<const char*>(kConsoleScript), "text/javascript; charset=utf-8");
    });
    std::string docs = reinterpret_cast<const char*>(kApiDocsPage);
    http.Get("/api-docs/docs", [docs, csp = content_security_policy(docs), document_headers](const httplib::Request&, httplib::Response& res) {
      document_headers(res, csp);
      res.set_content(docs, "text/html; charset=utf-8");
    });
    http.Get("/res/api_docs.js", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(reinterpret_cast<const char*>(kApiDocsScript), "text/javascript; charset=utf-8");
    });
  }
};

Server::Server(const Config& config, VmManager& vmm, Authenticator auth)
    : impl_(std::make_unique<Impl>(config, vmm, std::move(auth))) {}
Server::~Server() = default;

const ListenAddress& Server::address() const { return impl_->address; }

Status Server::bind() {
  auto addr = parse_listen_address(impl_->config.address, impl_->config.port);
  if (!addr.ok()) return addr.error().context("address");
  impl_->address = *addr;
  impl_->guard.emplace(*addr, impl_->config.allowed_hosts);
  impl_->routes();
  impl_->http.set_payload_max_length(10 * 1024 * 1024);
  // No connection may hold a worker by going quiet: every read and write has a deadline.
  impl_->http.set_read_timeout(10, 0);
  impl_->http.set_write_timeout(10, 0);
  // Rocket's keep_alive: seconds an idle connection is kept; 0 turns keep-alive off. Rocket
  // caps no connection's request count; cpp-httplib 0.11 closes one after 5, so every fifth
  // call of a script or the console paid a new connection. 1000 is nginx's default cap.
  if (impl_->config.keep_alive == 0) {
    impl_->http.set_keep_alive_max_count(1);
  } else {
    impl_->http.set_keep_alive_timeout(impl_->config.keep_alive);
    impl_->http.set_keep_alive_max_count(1000);
  }
  // Headers and body go out in separate writes; without NODELAY, Nagle and delayed ACKs add
  // ~40 ms to every keep-alive response: Status with 50 VMs went from 295 to 2400 req/s
  // (bench/prpc_status.sh).
  impl_->http.set_tcp_nodelay(true);
  const ListenAddress& a = impl_->address;
  impl_->http.set_socket_options(impl_->backlog.options());
  if (a.kind == ListenAddress::Kind::kUnix) {
    if (auto s = claim_unix_socket_path(a.path, impl_->config.reuse); !s.ok()) return s;
    impl_->http.set_address_family(AF_UNIX);
    // Created 0600 from the first instant: the socket is the management API.
    mode_t old = ::umask(0177);
    impl_->bound = impl_->http.bind_to_port(a.path, 80);  // port is ignored for AF_UNIX but must be non-zero
    ::umask(old);
  } else {
    impl_->bound = impl_->http.bind_to_port(a.host, a.port);
    if (!a.is_local() && !impl_->auth.enabled())  // only with allow_insecure_remote (config validation)
      log_message(LogLevel::kWarn, "vmm", "auth is disabled and the API listens on " + a.to_string() +
                                              ": anyone who reaches it controls every VM ([auth] enabled = true)");
  }
  if (!impl_->bound)
    return make_error(ErrorCode::kIo, "cannot listen on " + a.to_string() + ": " + std::strerror(errno));
  impl_->backlog.widen();
  return {};
}

Status Server::run() {
  if (!impl_->bound) return make_error(ErrorCode::kFailedPrecondition, "server is not bound");
  bool clean = impl_->http.listen_after_bind();
  impl_->finished = true;
  if (impl_->address.kind == ListenAddress::Kind::kUnix) ::unlink(impl_->address.path.c_str());
  if (!clean) return make_error(ErrorCode::kIo, "server stopped with an error");
  return {};
}

void Server::stop() {
  impl_->stopping = true;
  // cpp-httplib 0.11 ignores stop() until its loop runs; a signal right at start-up must still stop us.
  while (!impl_->http.is_running() && !impl_->finished && impl_->bound)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->http.stop();
}

}  // namespace dstackvmm::daemon
