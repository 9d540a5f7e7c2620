// SPDX-License-Identifier: Apache-2.0
// vmm.toml -> Config: the key list's reader (config_keys.hpp), layering rules and path resolution.
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config_internal.hpp"
#include "config/config_keys.hpp"
#include "base/text_util.hpp"
#include "config/toml_limits.hpp"
#include "config/toml_reader.hpp"

namespace dstackvmm {

using internal::SourcePos;
using internal::TableReader;
using internal::TomlReport;

std::string ConfigDiagnostic::to_string() const {
  std::string out = origin;
  if (line) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  if (severity == Severity::kWarning) out += "warning: ";
  return out + message;
}

namespace {

// A key whose value is one of a closed set, typed: anything else is an error at the value,
// naming the set and the closest member.
template <class E, size_t N>
void get_choice(TableReader& t, std::string_view key, E& out, std::optional<E> (*parse)(std::string_view),
                const std::array<E, N>& members) {
  const toml::node* n = t.node(key);
  if (!n) return;
  std::string text;
  t.get(key, text);  // reports a value that is not a string
  if (!n->is_string()) return;
  if (auto v = parse(text)) {
    out = *v;
    return;
  }
  std::vector<std::string> names;
  for (E m : members) names.emplace_back(to_string(m));
  std::string hint = closest_match(text, names);
  t.report().error(t.pos_of(*n), t.key_path(key),
                   "\"" + text + "\" is not one of " + join(names, ", ") + (hint.empty() ? "" : " (did you mean " + hint + "?)"));
}

// Reads one table by its key list (config_keys.hpp). Two seed-era spellings are read on the
// way, where they belong: the deprecated top-level image_path beside [image], and a top-level
// [networking] under [cvm.networking].
class KeyReader {
 public:
  KeyReader(TableReader& t, const NetworkingConfig* top_net = nullptr) : t_(t), top_net_(top_net) {}

  template <class T>
  void key(std::string_view name, T& v) { t_.get(name, v); }
  void size(std::string_view name, uint64_t& v) { t_.get_size(name, v); }
  template <class E, size_t N>
  void choice(std::string_view name, E& v, std::optional<E> (*parse)(std::string_view), const std::array<E, N>& all) {
    get_choice(t_, name, v, parse, all);
  }
  template <class S>
  void table(std::string_view name, S& s) {
    if constexpr (std::is_same_v<S, ImageConfig>) {
      read_image(s);
    } else if constexpr (std::is_same_v<S, CvmConfig>) {
      read_cvm(s);
    } else {
      TableReader sub = t_.table(name);
      if constexpr (std::is_same_v<S, NetworkingConfig>) {
        // The seed's top-level [networking] is the node default; [cvm.networking] (upstream's
        // spelling) is read over it key by key, so where both set a key, [cvm.networking] wins.
        if (top_net_) {
          s = *top_net_;
          if (sub.present())
            t_.report().warning({}, "cvm.networking",
                                "both [networking] and [cvm.networking] are given; keys set in "
                                "[cvm.networking] win");
        }
      }
      walk(sub, s);
    }
  }
  template <class S>
  void optional_table(std::string_view name, std::optional<S>& s) {
    const toml::node* n = t_.node(name);
    if (!n) return;
    if (!n->is_table()) {
      t_.report().error(t_.pos_of(*n), t_.key_path(name), "expected a table, got " + internal::describe_node(*n));
      return;
    }
    S read;
    TableReader sub = t_.table(name);
    walk(sub, read);
    s = std::move(read);
  }
  template <class S>
  void tables(std::string_view name, std::vector<S>& out, const char* shape) {
    const toml::node* n = t_.node(name);
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a) {
      t_.report().error(t_.pos_of(*n), t_.key_path(name),
                        std::string("expected an array of ") + shape + " tables, got " + internal::describe_node(*n));
      return;
    }
    std::vector<S> list;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      std::string path = t_.key_path(name) + "[" + std::to_string(i) + "]";
      if (!e.is_table()) {
        t_.report().error(t_.pos_of(e), path, std::string("expected a ") + shape + " table, got " + internal::describe_node(e));
        continue;
      }
      t_.report().positions()[path] = t_.pos_of(e);
      S s;
      TableReader sub(t_.report(), e.as_table(), path);
      walk(sub, s);
      list.push_back(s);
    }
    out = std::move(list);
  }
  template <class T>
  void old_name(std::string_view name, std::string_view current, T& v) {
    if (t_.present() && !t_.node(current)) t_.get(name, v);
  }
  void ignored(std::string_view name) { (void)t_.node(name); }

 private:
  template <class S>
  static void walk(TableReader& t, S& s, const NetworkingConfig* top_net = nullptr) {
    KeyReader r(t, top_net);
    config_keys::describe(r, s);
    t.finish();
  }

  void read_image(ImageConfig& image) {
    std::optional<std::string> legacy_image_path;
    t_.get("image_path", legacy_image_path);
    TableReader img = t_.table("image");
    bool image_path_set = img.present() && img.node("path");
    walk(img, image);
    if (!legacy_image_path) return;
    if (image_path_set)
      t_.report().warning(t_.report().positions()["image_path"], "image_path", "deprecated; [image] path is also set and wins");
    else
      image.path = *legacy_image_path;
  }

  void read_cvm(CvmConfig& c) {
    std::optional<NetworkingConfig> top_net;
    TableReader net = t_.table("networking");
    if (net.present()) {
      top_net = c.networking;
      walk(net, *top_net);
    }
    TableReader cvm = t_.table("cvm");
    walk(cvm, c, top_net ? &*top_net : nullptr);
  }

  TableReader& t_;
  const NetworkingConfig* top_net_;
};

void read_root(TableReader root, Config& c) {
  KeyReader r(root);
  config_keys::describe(r, c);
  root.finish();
}

// Relative paths in a config resolve against the folder of the file that names them.
void resolve_path(std::string& p, const std::filesystem::path& base) {
  if (p.empty()) return;
  std::filesystem::path path(p);
  if (path.is_absolute()) return;
  p = (base / path).lexically_normal().string();
}

void resolve_paths(Config& c, const std::filesystem::path& base) {
  resolve_path(c.temp_dir, base);
  resolve_path(c.run_path, base);
  resolve_path(c.image.path, base);
  resolve_path(c.cvm.volumes_dir, base);
  resolve_path(c.auth.htpasswd_file, base);
  resolve_path(c.supervisor.exe, base);
  resolve_path(c.supervisor.sock, base);
  resolve_path(c.supervisor.pid_file, base);
  resolve_path(c.supervisor.log_file, base);
  resolve_path(c.netd.socket, base);
  // A bare program name is looked up on PATH; only a name with a slash is a path.
  if (c.cvm.qemu_path.find('/') != std::string::npos) resolve_path(c.cvm.qemu_path, base);
  if (starts_with(c.address, "unix:")) {
    std::string sock = c.address.substr(5);
    resolve_path(sock, base);
    c.address = "unix:" + sock;
  }
}

}  // namespace

Result<Config> parse_config(std::string_view text, const ParseOptions& options,
                            std::vector<ConfigDiagnostic>* diagnostics, const Config& base) {
  TomlReport report(options.origin);
  Config config = base;
  toml::table root;
  try {
    if (auto bad = internal::check_toml_limits(text); !bad.ok())
      report.error({bad.line, bad.column}, "", bad.message);
    else
      root = toml::parse(text, options.origin);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    report.error({static_cast<uint32_t>(b.line), static_cast<uint32_t>(b.column)}, "",
                 std::string(e.description()));
  }
  if (!report.has_errors()) {
    read_root(TableReader(report, &root, ""), config);
    resolve_paths(config, options.base_dir);
    internal::validate_config(config, report);
  }
  auto& all = report.diagnostics();
  if (diagnostics) diagnostics->insert(diagnostics->end(), all.begin(), all.end());
  if (report.has_errors()) {
    std::string message;
    for (const auto& d : all) {
      if (d.severity != ConfigDiagnostic::Severity::kError) continue;
      if (!message.empty()) message += '\n';
      message += d.to_string();
    }
    return make_error(ErrorCode::kInvalidArgument, message);
  }
  return config;
}

Result<Config> load_config(const std::filesystem::path& path,
                           std::vector<ConfigDiagnostic>* diagnostics) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(ErrorCode::kNotFound,
                      path.string() + ": cannot open config file: " + std::strerror(errno));
  // At most one byte past the limit is read: a FIFO or a huge file is refused, not slurped.
  std::string text(internal::TomlLimits{}.max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  ParseOptions options;
  options.origin = path.string();
  options.base_dir = std::filesystem::absolute(path).parent_path();
  return parse_config(text, options, diagnostics);
}

}  // namespace dstackvmm
