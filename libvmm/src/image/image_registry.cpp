// SPDX-License-Identifier: Apache-2.0
// Guest images from an OCI registry: the distribution API over HTTPS (or HTTP), verified pulls.
#include <dstackvmm/image_registry.hpp>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <dstackvmm/image.hpp>
#include <dstackvmm/log.hpp>

#include "base/json_limits.hpp"
#include "base/crypto.hpp"
#include "base/fs_util.hpp"
#include "base/text_util.hpp"
#include "base/job_queue.hpp"
#include "image/layer_extract.hpp"
#include "image/oci_manifest.hpp"

namespace dstackvmm {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestTypes =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

struct Endpoint {
  std::string base;  // scheme://host[:port]
  std::string repo;
};

Endpoint parse_registry(std::string r) {
  std::string scheme = "https://";
  for (std::string p : {"http://", "https://"})
    if (r.rfind(p, 0) == 0) {
      scheme = p;
      r = r.substr(p.size());
    }
  auto slash = r.find('/');
  std::string first = r.substr(0, slash);
  bool is_host = slash != std::string::npos &&
                 (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost");
  if (is_host) return {scheme + first, r.substr(slash + 1)};
  return {"https://registry-1.docker.io", r.find('/') == std::string::npos ? "library/" + r : r};
}

bool valid_tag(const std::string& tag) {
  if (tag.empty() || tag.size() > 128) return false;
  for (char c : tag)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::string image_name(const std::string& tag) { return tag.rfind("dstack-", 0) == 0 ? tag : "dstack-" + tag; }

// What a registry's documents may weigh: an OCI manifest is a few KiB, a tag list of
// thousands of tags well under a MiB.
constexpr size_t kMaxManifest = 4u << 20;
constexpr size_t kMaxTagList = 8u << 20;

// One client per request: the registry may redirect blobs to another host.
class Http {
 public:
  explicit Http(Endpoint ep) : ep_(std::move(ep)) {}

  // GET with the registry's anonymous token dance on 401. The body goes to `sink` when given
  // (`on_response` is called before each response's body: a 401's or a redirect's is dropped).
  Result<httplib::Result> get(const std::string& path, httplib::Headers headers,
                              std::function<bool(const char*, size_t)> sink = {}, std::function<void()> on_response = {}) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
      auto res = fetch(ep_.base, path, headers, sink, on_response);
      if (!res) return make_error(ErrorCode::kUnavailable, "registry " + ep_.base + ": " + httplib::to_string(res.error()));
      if (res->status == 401 && attempt == 0) {
        if (auto s = authenticate(res->get_header_value("WWW-Authenticate")); !s.ok()) return s.error();
        continue;
      }
      if (res->status >= 300 && res->status < 400 && res->has_header("Location")) {
        std::string loc = res->get_header_value("Location");
        auto scheme_end = loc.find("://");
        auto path_start = scheme_end == std::string::npos ? 0 : loc.find('/', scheme_end + 3);
        std::string base = scheme_end == std::string::npos ? ep_.base : loc.substr(0, path_start);
        return fetch(base, loc.substr(path_start == std::string::npos ? loc.size() : path_start), {}, sink, on_response);
      }
      return res;
    }
    return make_error(ErrorCode::kUnavailable, "registry refused the anonymous token");
  }

  // A document (manifest, tag list): its status and body, read only up to `cap` bytes (past
  // that the transfer is cut off, so a hostile registry costs us `cap`, not its reply).
  Result<std::pair<int, std::string>> get_text(const std::string& path, httplib::Headers headers, size_t cap, const std::string& what) {
    std::string body;
    bool over = false;
    auto res = get(
        path, std::move(headers),
        [&](const char* d, size_t n) {
          if (body.size() + n > cap) return !(over = true);
          body.append(d, n);
          return true;
        },
        [&] { body.clear(); });
    if (over) return make_error(ErrorCode::kUnavailable, "the registry's " + what + " is larger than " + std::to_string(cap >> 20) + " MiB; refused");
    if (!res.ok()) return res.error();
    return std::pair<int, std::string>((*res)->status, std::move(body));
  }

 private:
  static httplib::Result fetch(const std::string& base, const std::string& path, const httplib::Headers& headers,
                               const std::function<bool(const char*, size_t)>& sink, const std::function<void()>& on_response = {}) {
    httplib::Client c(base);
    c.set_connection_timeout(10, 0);
    c.set_read_timeout(60, 0);
    if (sink)
      return c.Get(
          path.c_str(), headers,
          [&](const httplib::Response&) {
            if (on_response) on_response();
            return true;
          },
          [&](const char* d, size_t n) { return sink(d, n); });
    // Only the token reply comes here: small, and cut off past 64 KiB like any document.
    size_t got = 0;
    std::string body;
    auto res = c.Get(path.c_str(), headers, [&](const char* d, size_t n) {
      if ((got += n) > (64u << 10)) return false;
      body.append(d, n);
      return true;
    });
    if (res) res->body = std::move(body);
    return res;
  }

  Status authenticate(const std::string& challenge) {
    auto field = [&](const std::string& key) {
      auto at = challenge.find(key + "=\"");
      if (at == std::string::npos) return std::string();
      at += key.size() + 2;
      return challenge.substr(at, challenge.find('"', at) - at);
    };
    std::string realm = field("realm");
    if (realm.empty()) return make_error(ErrorCode::kUnavailable, "registry wants credentials we do not have");
    auto scheme_end = realm.find("://");
    auto path_start = realm.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    std::string query = "?service=" + field("service") + "&scope=" + field("scope");
    auto res = fetch(realm.substr(0, path_start), (path_start == std::string::npos ? "/" : realm.substr(path_start)) + query, {}, {});
    if (!res || res->status != 200) return make_error(ErrorCode::kUnavailable, "registry token request failed");
    json j = internal::parse_json(res->body);
    token_.clear();
    for (const char* key : {"token", "access_token"})
      if (auto it = j.is_object() ? j.find(key) : j.end(); token_.empty() && j.is_object() && it != j.end() && it->is_string())
        token_ = it->get<std::string>();
    if (token_.empty()) return make_error(ErrorCode::kUnavailable, "registry token reply has no token");
    return {};
  }

  Endpoint ep_;
  std::string token_;
};

}  // namespace

struct DSTACKVMM_HIDDEN ImageRegistry::Impl {
  std::string registry;
  Endpoint endpoint;
  fs::path image_dir;
  internal::LayerLimits limits;
  std::mutex mu;
  std::map<std::string, RegistryImage> pulls;  // by tag
  internal::JobQueue pullers{2};  // more pulls than this wait their turn

  void set(const std::string& tag, std::function<void(RegistryImage&)> f) {
    std::lock_guard l(mu);
    f(pulls[tag]);
  }
  Status pull_now(const std::string& tag);
  Status fetch_layer(Http& http, const internal::OciLayer& layer, const fs::path& dest, const std::string& tag);
};

ImageRegistry::ImageRegistry(std::string registry, fs::path image_dir, uint64_t max_unpacked_bytes)
    : impl_(std::make_unique<Impl>()) {
  impl_->limits.max_bytes = max_unpacked_bytes;
  impl_->registry = std::move(registry);
  impl_->endpoint = parse_registry(impl_->registry);
  impl_->image_dir = std::move(image_dir);
}

ImageRegistry::~ImageRegistry() {
  impl_->pullers.drain();
}

bool ImageRegistry::configured() const { return !impl_->registry.empty(); }

Result<std::vector<RegistryImage>> ImageRegistry::list() {
  std::vector<RegistryImage> out;
  if (!configured()) return out;
  Http http(impl_->endpoint);
  auto res = http.get_text("/v2/" + impl_->endpoint.repo + "/tags/list", {}, kMaxTagList, "tag list");
  if (!res.ok()) return res.error();
  if (res->first != 200)
    return make_error(ErrorCode::kUnavailable, "registry answered " + std::to_string(res->first) + " for the tag list");
  json j = internal::parse_json(res->second, {kMaxTagList, 8});
  if (!j.is_object() || !j["tags"].is_array()) return make_error(ErrorCode::kUnavailable, "registry tag list is not JSON");
  std::lock_guard l(impl_->mu);
  for (const auto& t : j["tags"]) {
    if (!t.is_string() || t.get<std::string>().rfind("sha256-", 0) == 0) continue;
    RegistryImage img;
    img.tag = t;
    if (auto it = impl_->pulls.find(img.tag); it != impl_->pulls.end()) img = it->second;
    img.tag = t;
    std::error_code ec;
    img.local = fs::is_directory(impl_->image_dir / image_name(img.tag), ec);
    out.push_back(img);
  }
  return out;
}

Status ImageRegistry::pull(const std::string& tag) {
  if (!configured()) return make_error(ErrorCode::kFailedPrecondition, "image registry is not configured");
  {
    std::lock_guard l(impl_->mu);
    RegistryImage& p = impl_->pulls[tag];
    if (p.pulling) return make_error(ErrorCode::kAlreadyExists, "image " + tag + " is already being pulled");
    p = RegistryImage{tag, false, true, "", 0, 0};
    impl_->pullers.post([impl = impl_.get(), tag] {
      Status s;
      try {
        s = impl->pull_now(tag);
      } catch (const std::exception& e) {  // a worker must never take the daemon down
        s = make_error(ErrorCode::kInternal, std::string("pull failed: ") + e.what());
      }
      impl->set(tag, [&](RegistryImage& p) {
        p.pulling = false;
        p.error = s.ok() ? "" : s.error().message;
      });
      log_message(s.ok() ? LogLevel::kInfo : LogLevel::kError, "registry",
                  "pull of " + tag + (s.ok() ? " done" : " failed: " + s.error().message));
    });
  }
  return {};
}

Status ImageRegistry::Impl::fetch_layer(Http& http, const internal::OciLayer& layer, const fs::path& dest, const std::string& tag) {
  const std::string& digest = layer.digest;
  uint64_t size = layer.size;
  std::ofstream out(dest, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  uint64_t got = 0;
  auto res = http.get("/v2/" + endpoint.repo + "/blobs/" + digest, {}, [&](const char* d, size_t n) {
    got += n;
    if (got > size) return false;  // more than the manifest promised: stop at once
    EVP_DigestUpdate(ctx, d, n);
    out.write(d, static_cast<std::streamsize>(n));
    set(tag, [&](RegistryImage& p) { p.bytes_done += n; });
    return true;
  });
  unsigned char md[32];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(ctx, md, &md_len);
  EVP_MD_CTX_free(ctx);
  out.close();
  if (!res.ok()) return res.error();
  if (got != size) return make_error(ErrorCode::kInvalidArgument, "size mismatch for " + digest + ": got " +
                                                                      std::to_string(got) + " bytes, expected " + std::to_string(size));
  if ((*res)->status != 200) return make_error(ErrorCode::kUnavailable, "registry answered " + std::to_string((*res)->status) + " for " + digest);
  std::string actual = "sha256:" + to_hex(std::string_view(reinterpret_cast<char*>(md), md_len));
  if (actual != digest) return make_error(ErrorCode::kInvalidArgument, "digest mismatch for " + digest + ": got " + actual);
  return {};
}

Status ImageRegistry::Impl::pull_now(const std::string& tag) {
  if (!valid_tag(tag)) return make_error(ErrorCode::kInvalidArgument, "invalid registry tag");
  Http http(endpoint);
  auto res = http.get_text("/v2/" + endpoint.repo + "/manifests/" + tag, {{"Accept", kManifestTypes}}, kMaxManifest, "manifest");
  if (!res.ok()) return res.error();
  if (res->first != 200) return make_error(ErrorCode::kNotFound, "registry answered " + std::to_string(res->first) + " for tag " + tag);
  auto manifest = internal::parse_oci_manifest(res->second);
  if (!manifest.ok()) return manifest.error().code == ErrorCode::kNotFound ? make_error(ErrorCode::kNotFound, "no linux/amd64 image for tag " + tag) : manifest.error();
  if (!manifest->amd64_digest.empty()) {  // an index: fetch the linux/amd64 manifest it names
    std::string digest = manifest->amd64_digest;
    res = http.get_text("/v2/" + endpoint.repo + "/manifests/" + digest, {{"Accept", kManifestTypes}}, kMaxManifest, "manifest");
    if (!res.ok()) return res.error();
    std::string actual = "sha256:" + internal::sha256_hex(res->second);
    if (actual != digest) return make_error(ErrorCode::kInvalidArgument, "digest mismatch for manifest " + digest + ": got " + actual);
    manifest = internal::parse_oci_manifest(res->second);
    if (!manifest.ok()) return manifest.error();
    if (manifest->layers.empty()) return make_error(ErrorCode::kInvalidArgument, "manifest has no layers");
  }
  uint64_t total = manifest->total_size;
  set(tag, [&](RegistryImage& p) { p.bytes_total = total; });

  // A private work folder of ours (the tag was validated, so the name stays one component).
  fs::path tmp = image_dir / (".tmp-pull-" + tag);
  (void)internal::remove_tree(tmp);
  if (::mkdir(tmp.c_str(), 0700) != 0 || ::mkdir((tmp / "rootfs").c_str(), 0700) != 0)
    return make_error(ErrorCode::kIo, "cannot create " + tmp.string() + ": " + std::strerror(errno));
  auto cleanup = [&](Error e) -> Status {
    (void)internal::remove_tree(tmp);
    return e;
  };
  int root_fd = ::open((tmp / "rootfs").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0) return cleanup(make_error(ErrorCode::kIo, "cannot open " + tmp.string() + ": " + std::strerror(errno)));
  internal::LayerProgress unpacked;
  size_t n = 0;
  Status extracted;
  for (const auto& layer : manifest->layers) {
    fs::path blob = tmp / ("layer" + std::to_string(n++));
    // The layer was verified against its digest before a byte of it is unpacked.
    if (extracted = fetch_layer(http, layer, blob, tag); !extracted.ok()) break;
    if (extracted = internal::extract_layer(blob, root_fd, limits, unpacked); !extracted.ok()) break;
    fs::remove(blob);
  }
  ::close(root_fd);
  if (!extracted.ok()) return cleanup(extracted.error());
  if (auto s = internal::check_extracted_tree(tmp / "rootfs"); !s.ok()) return cleanup(s.error());
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(tmp / "rootfs/metadata.json", ec)))
    return cleanup(make_error(ErrorCode::kInvalidArgument, "image has no metadata.json"));
  if (auto img = load_image(tmp, "rootfs"); !img.ok())  // every artefact a regular file inside
    return cleanup(make_error(ErrorCode::kInvalidArgument, "pulled image is not usable: " + img.error().message));
  fs::path final_dir = image_dir / image_name(tag);
  if (fs::exists(fs::symlink_status(final_dir, ec))) return cleanup(make_error(ErrorCode::kAlreadyExists, "image " + image_name(tag) + " already exists"));
  ::chmod((tmp / "rootfs").c_str(), 0755);
  fs::rename(tmp / "rootfs", final_dir, ec);
  if (ec) return cleanup(make_error(ErrorCode::kIo, "cannot move the image into place: " + ec.message()));
  (void)internal::remove_tree(tmp);
  return {};
}

}  // namespace dstackvmm
