// SPDX-License-Identifier: Apache-2.0
// Each record's fields, described once per form it takes: vm-manifest.json (Manifest) and the
// prpc JSON, whose protobuf twin the .proto files describe (Wire). Everything that reads or
// writes a record walks these tables with a visitor: the JSON writer (model/json_writer.hpp),
// the manifest reader (model/manifest.cpp), the wire reader (wire/json_codec.cpp). A new field
// is one line here (plus its .proto line and golden files).
//
// A visitor offers, for a field `name` of the record:
//   field(name, v)                  a value (string, number, bool, list of strings)
//   required(name, v)               the same; readers refuse a document without it
//   hex(name, bytes)                bytes, as lowercase hex
//   optional(name, opt, absent)     std::optional: when unset, written as null or not at all
//   records(name, list, absent)     a list of records of the same form (absent: kOmit leaves an empty list out)
//   wrapped(name, key, list)        a list of strings, each as {key: string} ([{"slot": "18:00.0"}])
//   first_of(name, list, absent)    the list's first record alone: a legacy single-value field
//                                   (read only when the list field was empty)
//   flagged(name, flag, opt)        UpdateVmRequest's optional list: sent with flag = true
//   nonempty(name, opt, hex)        UpdateVmRequest's optional string: an empty one is no change
//   status(name, s)                 a VmStatus, by its name
//   brief(name, record)             a record a brief listing sends as null
//   nonzero(name, n)                a count left out while it is 0
// The record may be const (writers) or not (readers).
#pragma once

#include <type_traits>

#include <dstackvmm/launch_record.hpp>
#include <dstackvmm/manifest.hpp>
#include <dstackvmm/vm_info.hpp>
#include <dstackvmm/vm_spec.hpp>

namespace dstackvmm::fields {

struct Manifest {};  // vm-manifest.json, as upstream writes it
struct Wire {};      // the prpc JSON mapping of the .proto messages

enum class Absent { kNull, kOmit };  // how an unset optional or an empty list is written

template <class R, class T>
concept Of = std::is_same_v<std::remove_const_t<R>, T>;

// ---- between records ----

// The fields a VmConfiguration and a VmManifest share, each pair once: `copy(from_or_to...)`
// is called with the configuration's member and the manifest's (manifest_for, configuration_of).
template <class Copy, Of<VmConfiguration> C, Of<VmManifest> M>
void shared(Copy&& copy, C& c, M& m) {
  copy(c.name, m.name);
  copy(c.image, m.image);
  copy(c.vcpu, m.vcpu);
  copy(c.memory, m.memory);
  copy(c.disk_size, m.disk_size);
  copy(c.ports, m.port_map);
  copy(c.hugepages, m.hugepages);
  copy(c.pin_numa, m.pin_numa);
  copy(c.kms_urls, m.kms_urls);
  copy(c.gateway_urls, m.gateway_urls);
  copy(c.no_tee, m.no_tee);
  copy(c.networks, m.networks);
  copy(c.simulated_tee, m.simulated_tee);
}

// ---- vm-manifest.json ----

template <class V, Of<PortMapping> P>
void describe(Manifest, V& v, P& p) {
  v.field("address", p.address);
  v.field("protocol", p.protocol);
  v.required("from", p.host_port);
  v.required("to", p.vm_port);
}

template <class V, Of<NetworkSpec> N>
void describe(Manifest, V& v, N& n) {
  v.field("mode", n.mode);
  v.field("bridge", n.bridge);
  v.field("mac_prefix", n.mac_prefix);
  v.field("net", n.net);
  v.field("dhcp_start", n.dhcp_start);
  v.field("restrict", n.restrict);
  v.field("netdev", n.netdev);
}

template <class V, Of<GpuSelection> G>
void describe(Manifest, V& v, G& g) {
  v.field("attach_mode", g.attach_mode);
  v.wrapped("gpus", "slot", g.gpus);
  v.wrapped("bridges", "slot", g.bridges);
}

template <class V, Of<VmManifest> M>
void describe(Manifest, V& v, M& m) {
  v.required("id", m.id);
  v.field("name", m.name);
  v.field("app_id", m.app_id);
  v.field("vcpu", m.vcpu);
  v.field("memory", m.memory);
  v.field("disk_size", m.disk_size);
  v.required("image", m.image);
  v.records("port_map", m.port_map, Absent::kNull);
  v.field("created_at_ms", m.created_at_ms);
  v.field("hugepages", m.hugepages);
  v.field("pin_numa", m.pin_numa);
  v.optional("gpus", m.gpus, Absent::kOmit);
  v.field("kms_urls", m.kms_urls);
  v.field("gateway_urls", m.gateway_urls);
  v.field("no_tee", m.no_tee);
  v.optional("simulated_tee", m.simulated_tee, Absent::kOmit);
  v.field("swtpm", m.swtpm);
  v.records("networks", m.networks, Absent::kOmit);
  v.first_of("networking", m.networks, Absent::kOmit);  // older upstream readers expect it
  v.wrapped("volumes", "source", m.volumes);
}

// ---- the prpc JSON ----

template <class V, Of<PortMapping> P>
void describe(Wire, V& v, P& p) {
  v.field("protocol", p.protocol);
  v.field("host_port", p.host_port);
  v.field("vm_port", p.vm_port);
  v.field("host_address", p.address);
}

template <class V, Of<NetworkSpec> N>
void describe(Wire, V& v, N& n) {
  v.field("mode", n.mode);
  v.field("bridge_name", n.bridge);
}

template <class V, Of<GpuRequest> G>
void describe(Wire, V& v, G& g) {
  v.wrapped("gpus", "slot", g.slots);
  v.field("attach_mode", g.attach_mode);
}

template <class V, Of<VmConfiguration> C>
void describe(Wire, V& v, C& c) {
  v.field("name", c.name);
  v.field("image", c.image);
  v.field("compose_file", c.compose_file);
  v.field("vcpu", c.vcpu);
  v.field("memory", c.memory);
  v.field("disk_size", c.disk_size);
  v.records("ports", c.ports, Absent::kNull);
  v.hex("encrypted_env", c.encrypted_env);
  v.optional("app_id", c.app_id, Absent::kNull);
  v.field("user_config", c.user_config);
  v.field("hugepages", c.hugepages);
  v.field("pin_numa", c.pin_numa);
  v.optional("gpus", c.gpus, Absent::kNull);
  v.field("kms_urls", c.kms_urls);
  v.field("gateway_urls", c.gateway_urls);
  v.field("stopped", c.stopped);
  v.field("no_tee", c.no_tee);
  v.records("networks", c.networks, Absent::kNull);
  v.first_of("networking", c.networks, Absent::kNull);  // upstream's single network, before networks
  v.optional("simulated_tee", c.simulated_tee, Absent::kNull);
}

template <class V, Of<VmUpdate> U>
void describe(Wire, V& v, U& u) {
  v.field("id", u.id);
  v.nonempty("compose_file", u.compose_file, false);
  v.nonempty("encrypted_env", u.encrypted_env, true);
  v.nonempty("user_config", u.user_config, false);
  v.flagged("ports", "update_ports", u.ports);
  v.flagged("kms_urls", "update_kms_urls", u.kms_urls);
  v.flagged("gateway_urls", "update_gateway_urls", u.gateway_urls);
  v.optional("gpus", u.gpus, Absent::kOmit);
  v.optional("vcpu", u.vcpu, Absent::kOmit);
  v.optional("memory", u.memory, Absent::kOmit);
  v.optional("disk_size", u.disk_size, Absent::kOmit);
  v.optional("image", u.image, Absent::kOmit);
  v.optional("no_tee", u.no_tee, Absent::kOmit);
  v.flagged("networks", "update_networking", u.networks);
}

template <class V, Of<GuestEvent> E>
void describe(Wire, V& v, E& e) {
  v.field("event", e.event);
  v.field("body", e.body);
  v.field("timestamp", e.timestamp_ms);
}

template <class V, Of<NetworkInterfaceStatus> N>
void describe(Wire, V& v, N& n) {
  v.field("mode", n.mode);
  v.field("backend", n.backend);
  v.field("mac", n.mac);
  v.optional("bridge_name", n.bridge_name, Absent::kNull);
  v.field("netdev_id", n.netdev_id);
}

// created_at_ms, pid and agent_port are the library's; the wire does not carry them.
template <class V, Of<VmInfo> I>
void describe(Wire, V& v, I& i) {
  v.field("id", i.id);
  v.field("name", i.name);
  v.status("status", i.status);
  v.field("uptime", i.uptime);
  v.optional("app_url", i.app_url, Absent::kNull);
  v.field("app_id", i.app_id);
  v.optional("instance_id", i.instance_id, Absent::kNull);
  v.brief("configuration", i.configuration);
  v.field("exited_at", i.exited_at);
  v.field("boot_progress", i.boot_progress);
  v.field("boot_error", i.boot_error);
  v.field("shutdown_progress", i.shutdown_progress);
  v.field("image_version", i.image_version);
  v.records("events", i.events, Absent::kNull);
  v.records("interfaces", i.interfaces, Absent::kNull);
  // Ours, not in upstream's VmInfo (its clients ignore unknown fields):
  v.field("cid", i.cid);
  v.optional("degraded", i.degraded, Absent::kNull);
  v.field("pending_changes", i.pending_changes);
}

// ---- launch records: launch-history.json, and GetInfo's `launches` as they are ----

template <class V, Of<LaunchedFile> F>
void describe(Wire, V& v, F& f) {
  v.field("role", f.role);
  v.field("path", f.path);
  v.field("size", f.size);
  v.field("sha256", f.sha256);
}

template <class V, Of<LaunchExit> E>
void describe(Wire, V& v, E& e) {
  v.field("time_ms", e.time_ms);
  v.optional("exit_code", e.exit_code, Absent::kOmit);
  v.optional("exit_signal", e.exit_signal, Absent::kOmit);
  v.field("serial_tail", e.serial_tail);
}

template <class V, Of<LaunchPanic> P>
void describe(Wire, V& v, P& p) {
  v.field("time_ms", p.time_ms);
  v.field("message", p.message);
  v.field("serial_tail", p.serial_tail);
}

template <class V, Of<LaunchRecord> R>
void describe(Wire, V& v, R& r) {
  v.field("time_ms", r.time_ms);
  v.field("argv", r.argv);
  v.records("files", r.files, Absent::kNull);
  v.field("image", r.image);
  v.field("image_version", r.image_version);
  v.field("platform", r.platform);
  v.field("accel", r.accel);
  v.field("cid", r.cid);
  v.records("ports", r.ports, Absent::kNull);
  v.field("gpus", r.gpus);
  v.field("compose_hash", r.compose_hash);
  v.field("app_id", r.app_id);
  v.field("vm_config", r.vm_config);
  v.field("mr_config", r.mr_config);
  v.optional("exit", r.exit, Absent::kOmit);
  v.records("panics", r.panics, Absent::kOmit);  // kept only while a panic was seen (panic_count > 0)
  v.nonzero("panic_count", r.panic_count);
}

}  // namespace dstackvmm::fields
