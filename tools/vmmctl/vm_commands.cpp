// SPDX-License-Identifier: Apache-2.0
// lsvm, info, start, stop, remove, resize, logs: one VM (or all) at a time.
#include <cstdio>
#include <ctime>
#include <iostream>

#include <dstackvmm/client/deploy_spec.hpp>

#include "cli.hpp"
#include "wait.hpp"

namespace vmmctl {

namespace {

// `<seq> <time> <vm id> <kind> [event] [detail] [exit]`: one line a journal entry.
std::string event_line(const Json& e) {
  if (cell(e, "kind") == "gap") return "-- " + cell(e, "detail") + " --";
  time_t secs = static_cast<time_t>(field_uint(e, "time_ms") / 1000);
  char when[32] = "";
  struct tm tm {};
  if (gmtime_r(&secs, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = cell(e, "seq") + "  " + when + "  " + cell(e, "vm_id") + "  " + cell(e, "kind");
  if (e.contains("event")) line += " " + cell(e, "event");
  if (e.contains("detail")) line += ": " + printable(cell(e, "detail"));
  if (e.contains("exit_code")) line += " (exit code " + cell(e, "exit_code") + ")";
  if (e.contains("exit_signal")) line += " (killed by signal " + cell(e, "exit_signal") + ")";
  return line;
}

// Event times (unix ms) as UTC wall-clock time, to the millisecond.
std::string clock_time(uint64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03u", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<unsigned>(ms % 1000));
  return buf;
}

std::string gpus_cell(const Json& conf) {
  if (!conf.is_object() || !conf.contains("gpus") || !conf["gpus"].is_object()) return "-";
  const Json& g = conf["gpus"];
  if (field_string(g, "attach_mode") == "all") return "All GPUs";
  std::string out;
  for (const auto& s : field_array(g, "gpus")) out += (out.empty() ? "" : ",") + field_string(s, "slot");
  return out.empty() ? "-" : out;
}

// `lsvm --all-contexts`: every saved context's VMs (contexts by name); a host that does not answer is a row of
// its own (an "error" with --json), not the end of the listing. Exit 4 when none answered.
void lsvm_all(Cli& cli) {
  auto config = cli.config();
  if (config.contexts.empty()) fail(ErrorCode::kNotFound, "no contexts saved (`vmmctl context add NAME --url URL`)");
  Json out = Json::array();
  std::vector<std::vector<std::string>> rows;
  size_t reached = 0;
  for (const auto& ctx : config.contexts) {
    auto status = dstackvmm::client::parse_reply(cli.client_for(ctx).status({.brief = true}));
    if (!status.ok()) {
      out.push_back({{"context", ctx.name}, {"url", ctx.url}, {"error", status.error().message}});
      rows.push_back({ctx.name, "-", "-", "unreachable: " + status.error().message, ""});
      continue;
    }
    ++reached;
    const Json& vms = status->contains("vms") ? (*status)["vms"] : Json::array();
    out.push_back({{"context", ctx.name}, {"url", ctx.url}, {"vms", vms}});
    for (const auto& vm : vms) rows.push_back({ctx.name, cell(vm, "id"), cell(vm, "name"), cell(vm, "status"), cell(vm, "uptime")});
  }
  if (cli.json()) print_json(out);
  else print_table({"Context", "VM ID", "Name", "Status", "Uptime"}, rows);
  if (!reached) fail(ErrorCode::kUnavailable, "no context answered");
}

void lsvm(Cli& cli, bool verbose) {
  if (cli.globals().all_contexts) return lsvm_all(cli);
  Json status = must_json(cli.client().status({}));
  const Json& vms = status.contains("vms") ? status["vms"] : Json::array();
  if (cli.json()) return print_json(vms);
  std::vector<std::string> header{"VM ID", "App ID", "Name", "Status", "Uptime"};
  if (verbose) header.insert(header.end(), {"Instance ID", "vCPU", "Memory MB", "Disk GB", "Image", "GPUs"});
  std::vector<std::vector<std::string>> rows;
  for (const auto& vm : vms) {
    std::vector<std::string> r{cell(vm, "id"), cell(vm, "app_id"), cell(vm, "name"), cell(vm, "status"), cell(vm, "uptime")};
    if (verbose) {
      const Json& c = vm.contains("configuration") ? vm["configuration"] : Json();
      r.insert(r.end(), {cell(vm, "instance_id", "-"), c.is_object() ? cell(c, "vcpu") : "-", c.is_object() ? cell(c, "memory") : "-",
                         c.is_object() ? cell(c, "disk_size") : "-", c.is_object() ? cell(c, "image") : "-", gpus_cell(c)});
    }
    rows.push_back(std::move(r));
  }
  print_table(header, rows);
}

// An argv word as a POSIX shell reads it back: bare when safe, else in single quotes.
std::string shell_quote(const std::string& word) {
  bool safe = !word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,@%+-") == std::string::npos;
  if (safe) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `vmmctl info --launch`: what the last boot ran (--json: every kept boot's record).
void launch_info(Cli& cli, const std::string& id) {
  Json records = must_json(cli.client().launches(id));
  if (cli.json()) return print_json(records);
  if (records.empty()) return (void)(std::cout << "no launch recorded for this VM (never started by this daemon)\n");
  const Json& r = records.back();
  std::cout << "Launched:     " << clock_time(field_uint(r, "time_ms")) << "\n"
            << "Image:        " << cell(r, "image") << " (" << cell(r, "image_version") << ")\n"
            << "Platform:     " << cell(r, "platform") << ", accel " << cell(r, "accel") << "\n"
            << "CID:          " << cell(r, "cid") << "\n"
            << "Compose hash: " << cell(r, "compose_hash") << "\n"
            << "App ID:       " << cell(r, "app_id") << "\n";
  for (const auto& p : field_array(r, "ports"))
    std::cout << "Port:         " << cell(p, "protocol") << ":" << cell(p, "host_address") << ":" << cell(p, "host_port") << ":" << cell(p, "vm_port") << "\n";
  for (const auto& g : field_array(r, "gpus")) std::cout << "GPU:          " << g.get<std::string>() << "\n";
  for (const auto& f : field_array(r, "files"))
    std::cout << "File:         " << cell(f, "role") << " " << cell(f, "path") << " sha256:" << cell(f, "sha256", "(pending)") << "\n";
  std::string argv;
  for (const auto& a : field_array(r, "argv")) argv += (argv.empty() ? "" : " ") + shell_quote(a.get<std::string>());
  std::cout << "Command:      " << argv << "\n";
  if (!cell(r, "vm_config").empty()) std::cout << "VM config:    " << cell(r, "vm_config") << "\n";
  if (!cell(r, "mr_config").empty()) std::cout << "MrConfig:     " << cell(r, "mr_config") << "\n";
}

// The boots that failed: a QEMU that ended while the VM was meant to run (when, how, the
// serial tail), and kernel panics, after which the guest rebooted inside the same QEMU.
void failed_boots(Cli& cli, const std::string& id) {
  auto records = dstackvmm::client::parse_reply(cli.client().launches(id));
  if (!records.ok()) return;
  size_t exits = 0, panics = 0;
  for (const auto& r : *records) {
    exits += r.contains("exit") && r["exit"].is_object();
    panics += field_uint(r, "panic_count");
  }
  if (exits + panics == 0) return;
  std::cout << "Failed boots (" << exits << " QEMU exit(s) and " << panics << " kernel panic(s) in the last "
            << records->size() << " launch(es)):\n";
  auto since_launch = [](const Json& r, const Json& e) {
    uint64_t at = field_uint(e, "time_ms"), from = field_uint(r, "time_ms");
    return std::to_string(at > from ? (at - from) / 1000 : 0);
  };
  for (const auto& r : *records) {
    const Json& kept = field_array(r, "panics");
    if (field_uint(r, "panic_count") > kept.size())
      std::cout << "  (" << field_uint(r, "panic_count") - kept.size() << " earlier panic(s) of the launch at "
                << clock_time(field_uint(r, "time_ms")) << " not kept)\n";
    for (const auto& p : kept) {
      std::cout << "  " << clock_time(field_uint(p, "time_ms")) << "  kernel panic " << since_launch(r, p)
                << " s after its QEMU started (the guest rebooted in place): " << printable(cell(p, "message")) << "\n";
      for (const auto& line : field_array(p, "serial_tail")) std::cout << "    | " << printable(line.get<std::string>()) << "\n";
    }
    if (!r.contains("exit") || !r["exit"].is_object()) continue;
    const Json& e = r["exit"];
    std::string how = e.contains("exit_signal") ? "killed by signal " + cell(e, "exit_signal") : "exit code " + cell(e, "exit_code", "?");
    std::cout << "  " << clock_time(field_uint(r, "time_ms")) << "  " << how << " after " << since_launch(r, e) << " s; serial log ended:\n";
    for (const auto& line : field_array(e, "serial_tail")) std::cout << "    | " << printable(line.get<std::string>()) << "\n";
  }
}

void info(Cli& cli, const std::string& id, bool launch) {
  if (launch) return launch_info(cli, id);
  Json vm = vm_info(cli, id);
  if (cli.json()) return print_json(vm);
  const Json& c = vm.contains("configuration") && vm["configuration"].is_object() ? vm["configuration"] : Json::object();
  std::vector<std::vector<std::string>> rows = {
      {"ID", cell(vm, "id")},
      {"Name", cell(vm, "name")},
      {"Status", cell(vm, "status")},
      {"Uptime", cell(vm, "uptime")},
      {"Exited", cell(vm, "exited_at")},
      {"App ID", cell(vm, "app_id")},
      {"Instance ID", cell(vm, "instance_id", "-")},
      {"App URL", cell(vm, "app_url", "-")},
      {"Image", cell(c, "image") + " (" + cell(vm, "image_version") + ")"},
      {"vCPU", cell(c, "vcpu")},
      {"Memory", cell(c, "memory") + " MB"},
      {"Disk", cell(c, "disk_size") + " GB"},
      {"GPUs", gpus_cell(c)},
      {"Boot", cell(vm, "boot_progress") + (cell(vm, "boot_error").empty() ? "" : " (error: " + cell(vm, "boot_error") + ")")},
  };
  for (const auto& p : field_array(c, "ports"))
    rows.push_back({"Port", dstackvmm::client::format_port_spec(
                                {field_string(p, "protocol"), field_string(p, "host_address"), static_cast<uint32_t>(field_uint(p, "host_port")), static_cast<uint32_t>(field_uint(p, "vm_port"))})});
  for (const auto& n : field_array(vm, "interfaces"))
    rows.push_back({"Network", cell(n, "mode") + " " + cell(n, "backend") + " " + cell(n, "mac")});
  for (const auto& r : rows) std::cout << r[0] << ":" << std::string(14 - std::min<size_t>(13, r[0].size()), ' ') << r[1] << "\n";
  const Json& events = field_array(vm, "events");
  if (!events.empty()) std::cout << "Events (last 10):\n";
  size_t from = events.size() > 10 ? events.size() - 10 : 0;
  for (size_t i = from; i < events.size(); ++i)
    std::cout << "  " << clock_time(field_uint(events[i], "timestamp")) << "  " << cell(events[i], "event") << ": " << printable(cell(events[i], "body")) << "\n";
  failed_boots(cli, id);
}

}  // namespace

void add_vm_commands(CLI::App& app, Cli& cli) {
  auto* ls = app.add_subcommand("lsvm", "list the VMs");
  static bool verbose = false;
  ls->add_flag("-v,--verbose", verbose, "also instance id, resources, image and GPUs");
  ls->callback([&cli] { lsvm(cli, verbose); });

  static std::string id;  // one command runs per process
  auto* in = app.add_subcommand("info", "show one VM: configuration, status, events");
  in->add_option("vm_id", id, "VM id")->required();
  static bool launch = false;
  in->add_flag("--launch", launch, "what the last boot ran: QEMU command, file hashes, CID, ports, GPUs, compose hash "
                                   "(--json: the records of the last boots)");
  in->callback([&cli] { info(cli, id, launch); });

  static WaitFlags start_wait, stop_wait;
  auto* start = app.add_subcommand("start", "start a VM");
  start->add_option("vm_id", id, "VM id")->required();
  add_wait_flags(start, start_wait, "running");
  start->callback([&cli] {
    must(cli.client().start_vm(id));
    finish_with_wait(cli, id, start_wait, Json{{"id", id}});
  });

  static bool force = false;
  auto* stop = app.add_subcommand("stop", "stop a VM: ask its guest to power off, or kill it with -f");
  stop->add_option("vm_id", id, "VM id")->required();
  stop->add_flag("-f,--force", force, "stop it at once (StopVm), as pulling the plug: data not yet on disk is lost");
  add_wait_flags(stop, stop_wait, "stopped");
  stop->callback([&cli] {
    must(force ? cli.client().stop_vm(id) : cli.client().shutdown_vm(id));
    finish_with_wait(cli, id, stop_wait, Json{{"id", id}});
  });

  auto* rm = app.add_subcommand("remove", "remove a VM and its disk (the VM is stopped first)");
  rm->add_option("vm_id", id, "VM id")->required();
  rm->callback([&cli] {
    must(cli.client().remove_vm(id));
    if (cli.json()) print_json(Json{{"id", id}});
  });

  static std::optional<uint32_t> vcpu;
  static std::optional<std::string> memory, disk, image;
  auto* resize = app.add_subcommand("resize", "change a stopped VM's vCPUs, memory, disk (grow only) or image");
  resize->add_option("vm_id", id, "VM id")->required();
  resize->add_option("--vcpu", vcpu, "number of vCPUs");
  resize->add_option("--memory", memory, "memory size: 512M, 2G, 1.5G");
  resize->add_option("--disk", disk, "disk size: 20G, 1T (it can only grow)");
  resize->add_option("--image", image, "image name (`vmmctl lsimage`)");
  resize->callback([&cli] {
    if (!vcpu && !memory && !disk && !image) fail(ErrorCode::kInvalidArgument, "nothing to resize: give --vcpu, --memory, --disk or --image");
    std::optional<uint32_t> mem, dsk;
    if (memory) mem = must(dstackvmm::client::parse_memory_mb(*memory));
    if (disk) dsk = must(dstackvmm::client::parse_disk_gb(*disk));
    must(cli.client().resize_vm(id, vcpu, mem, dsk, image));
    if (cli.json()) print_json(Json{{"id", id}});
  });

  static dstackvmm::client::LogQuery logs;
  auto* lg = app.add_subcommand("logs", "print a VM's log (serial console by default)");
  lg->add_option("vm_id", logs.id, "VM id")->required();
  lg->add_option("-n,--lines", logs.lines, "how many lines from the end")->capture_default_str();
  lg->add_flag("-f,--follow", logs.follow, "keep printing what comes");
  lg->add_option("--channel", logs.channel, "serial, stdout (QEMU's) or stderr")
      ->check(CLI::IsMember({"serial", "stdout", "stderr"}))
      ->capture_default_str();
  lg->callback([&cli] {
    // Plain text, even with --json: a log is lines, and a follower never ends.
    must(cli.client().logs(logs, [](std::string_view chunk) {
      std::cout.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      std::cout.flush();
      return static_cast<bool>(std::cout);
    }));
  });

  static dstackvmm::client::EventQuery events;
  auto* ev = app.add_subcommand("events", "what happened to VMs: lifecycle changes and guest boot milestones, oldest first");
  ev->add_flag("-f,--follow", events.follow, "keep printing what happens");
  ev->add_option("--vm", events.vm, "one VM only (its id)");
  ev->add_option("--since", events.after, "resume after this sequence number (the first column; `seq` with --json)");
  ev->callback([&cli] {
    must(cli.client().events(events, [&cli](std::string_view entry) {
      // --json: one object a line, as the daemon sent it (a stream, so not one array).
      if (cli.json()) std::cout << entry << "\n";
      else std::cout << event_line(must_json(std::string(entry))) << "\n";
      std::cout.flush();
      return static_cast<bool>(std::cout);
    }));
  });
}

}  // namespace vmmctl
