// SPDX-License-Identifier: Apache-2.0
// Typed, position-aware reading of TOML tables: every type error and unknown key becomes a
// ConfigDiagnostic naming file:line:col and the dotted key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include <dstackvmm/config.hpp>

namespace dstackvmm::internal {

struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
};

// Diagnostics and key positions of one parse.
class TomlReport {
 public:
  explicit TomlReport(std::string origin) : origin_(std::move(origin)) {}

  void error(SourcePos at, std::string key, std::string message);
  void warning(SourcePos at, std::string key, std::string message);
  bool has_errors() const;

  const std::string& origin() const { return origin_; }
  std::vector<ConfigDiagnostic>& diagnostics() { return diagnostics_; }
  std::map<std::string, SourcePos>& positions() { return positions_; }

 private:
  std::string origin_;
  std::vector<ConfigDiagnostic> diagnostics_;
  std::map<std::string, SourcePos> positions_;
};

// Reads the keys of one table into typed fields. A key that is absent leaves the field as
// it was (the default); a key of the wrong type is an error; finish() warns about every key
// that no get() asked for, with the closest known key as a suggestion.
class TableReader {
 public:
  TableReader(TomlReport& report, const toml::table* table, std::string path);

  bool present() const { return table_ != nullptr; }
  TableReader table(std::string_view key);

  void get(std::string_view key, bool& out);
  void get(std::string_view key, uint32_t& out);
  void get(std::string_view key, uint64_t& out);
  void get(std::string_view key, std::string& out);
  void get(std::string_view key, std::optional<std::string>& out);
  void get(std::string_view key, std::optional<bool>& out);
  void get(std::string_view key, std::optional<uint32_t>& out);
  void get(std::string_view key, std::vector<std::string>& out);
  void get(std::string_view key, std::vector<uint32_t>& out);
  void get(std::string_view key, std::map<std::string, std::string>& out);
  // An integer of bytes or a string like "512K", "4M", "1G" (powers of 1024).
  void get_size(std::string_view key, uint64_t& out);
  // Marks `key` known and returns its node (nullptr when absent), for shapes read by hand.
  const toml::node* node(std::string_view key);

  void finish();

  std::string key_path(std::string_view key) const;
  SourcePos pos_of(const toml::node& n) const;
  TomlReport& report() { return *report_; }

 private:
  const toml::node* lookup(std::string_view key);  // marks known, records position
  void type_error(std::string_view key, const toml::node& n, std::string_view expected);

  TomlReport* report_;
  const toml::table* table_;
  std::string path_;
  std::vector<std::string> known_;
};

// Reads a typed value out of a single node; shared by the table reader and array readers.
std::string describe_node(const toml::node& n);

}  // namespace dstackvmm::internal
