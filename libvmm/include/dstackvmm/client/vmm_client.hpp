// SPDX-License-Identifier: Apache-2.0
// A client of a running dstack-vmm daemon (ours or upstream's): the prpc calls of /prpc and
// /guest, and the /logs stream. Replies come back as the wire's JSON documents (field names as
// in spec/vmm-api.md), so what a script sees is what the daemon sent.
#pragma once

#include <dstackvmm/export.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/client/env_crypto.hpp>
#include <dstackvmm/error.hpp>
#include <dstackvmm/vm_info.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm::client {

struct ClientOptions {
  // "unix:/path/vmm.sock", "http://host:port" or "https://host:port" (certificates are not
  // checked, as upstream's CLI: point it at a daemon you trust or at a unix socket).
  std::string url = "http://localhost:8080";
  std::string token;          // Authorization: Bearer <token>; wins over Basic
  std::string auth_user;      // Basic auth, with auth_password
  std::string auth_password;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{60000};  // for one call, reading the whole answer
  size_t max_reply_bytes = 64u << 20;        // a reply larger than this is an error
  std::string peer = "the daemon";           // how errors name the other side ("the KMS")
};

// Which VMs Status lists (all fields optional; upstream's StatusRequest).
struct StatusQuery {
  std::vector<std::string> ids;
  bool brief = false;
  std::string keyword;
  uint32_t page = 0, page_size = 0;
};

// What /logs streams.
struct LogQuery {
  std::string id;
  std::string channel = "serial";  // serial | stdout | stderr
  uint32_t lines = 20;
  bool follow = false;
  bool ansi = false;
};

// What /events streams (ours): the daemon's journal of VM lifecycle and guest milestones.
struct EventQuery {
  std::string vm;      // one VM only ("" = all)
  uint64_t after = 0;  // resume after this seq (0 = from the oldest the daemon holds)
  bool follow = false; // keep waiting for new entries
};

// Errors: the daemon's own code where it sends one (our daemon's X-Error-Code header), else
// kNotFound for a "... not found" message and kFailedPrecondition otherwise; kUnauthenticated
// for 401; kUnavailable, naming the URL and what to do, when the daemon cannot be reached.
class DSTACKVMM_EXPORT VmmClient {
 public:
  // Checks the URL's form only; nothing is contacted until the first call.
  static Result<VmmClient> create(ClientOptions options);
  VmmClient(VmmClient&&) noexcept;
  VmmClient& operator=(VmmClient&&) noexcept;
  ~VmmClient();

  const ClientOptions& options() const;

  // Replies the library has no type for come as JSON text (parsed and bounded here, printed
  // compactly), so this header carries no JSON library's type: parse them with any.
  // Any method of /prpc, with a JSON input ("" for Empty); returns the reply ("null" for Empty).
  Result<std::string> call(std::string_view method, std::string_view input_json = "") const;
  // A method of the guest agent of VM `id`, through the daemon's /guest mount.
  Result<std::string> guest(std::string_view method, const std::string& id) const;

  // The Vmm service, one call per method.
  Result<std::string> create_vm(const VmConfiguration& config) const;  // the new VM's id
  Status start_vm(const std::string& id) const;
  Status stop_vm(const std::string& id) const;      // hard stop
  Status shutdown_vm(const std::string& id) const;  // asks the guest to power off
  Status remove_vm(const std::string& id) const;
  Result<std::string> update_vm(const VmUpdate& update) const;  // new app id, or ""
  Result<std::string> upgrade_app(const VmUpdate& update) const;  // upstream's deprecated alias
  Status resize_vm(const std::string& id, std::optional<uint32_t> vcpu, std::optional<uint32_t> memory_mb,
                   std::optional<uint32_t> disk_gb, std::optional<std::string> image) const;
  Result<std::string> compose_hash(const std::string& name, const std::string& compose_file) const;
  Result<std::string> status(const StatusQuery& query = {}) const;  // StatusResponse
  // The same listing, decoded: each VM as the library's VmInfo (its configuration empty when
  // the query is brief).
  Result<std::vector<VmInfo>> vms(const StatusQuery& query = {}) const;
  Result<std::optional<std::string>> info(const std::string& id) const;  // VmInfo, or nullopt if unknown
  // Ours: GetInfo's launch records of the VM's last boots, oldest first ([] from an upstream
  // daemon). kNotFound for an unknown VM.
  Result<std::string> launches(const std::string& id) const;
  // Ours: CheckHost, {"ok": bool, "checks": [{name, level, detail, fix}]}.
  Result<std::string> check_host() const;
  Result<std::string> list_images() const;  // ImageListResponse
  Result<std::string> app_env_encrypt_pub_key(std::string_view app_id_hex) const;  // PublicKeyResponse
  // The same call, decoded. A KMS answers it too: point a VmmClient at the KMS's URL, as
  // upstream's CLI does, to skip the daemon.
  Result<EnvKeyResponse> env_key(std::string_view app_id_hex) const;
  Result<std::string> version() const;
  // Ours: GET /health, the document whether healthy (HTTP 200) or not (503); its "status" is
  // "ok" or "unhealthy". kUnavailable from a daemon without the route.
  Result<std::string> health() const;
  Result<std::string> meta() const;
  Result<std::string> list_gpus() const;
  Result<std::string> reload_vms() const;
  Result<std::string> sv_list() const;
  Status sv_stop(const std::string& id) const;
  Status sv_remove(const std::string& id) const;
  Result<std::string> list_registry_images() const;
  Status pull_registry_image(const std::string& tag) const;
  Status delete_image(const std::string& name) const;

  // Streams a VM's log to `sink` as it arrives; returns when the daemon ends the stream, or
  // when `sink` returns false. With follow, `timeout` does not apply (a follower waits).
  Status logs(const LogQuery& query, const std::function<bool(std::string_view)>& sink) const;

  // Streams /events: each journal entry as its JSON object (seq, time_ms, vm_id, kind, status,
  // and event, detail, exit_code, exit_signal when set), or {"kind":"gap",...} when entries
  // were missed. Returns when the daemon ends the stream or `sink` returns false. kUnavailable
  // from a daemon without the route, or one silent for 60 s while following.
  Status events(const EventQuery& query, const std::function<bool(std::string_view entry_json)>& sink) const;

  // Waits until VM `id` has `status` ("running", "stopped", ...), asking every `interval`;
  // `progress` (optional) hears each status seen. kNotFound if the VM goes away,
  // kFailedPrecondition on the deadline.
  Status wait_status(const std::string& id, std::string_view status, std::chrono::milliseconds deadline,
                     const std::function<void(std::string_view info_json)>& progress = {},
                     std::chrono::milliseconds interval = std::chrono::milliseconds(250)) const;

 private:
  struct DSTACKVMM_HIDDEN Impl;
  explicit VmmClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dstackvmm::client
