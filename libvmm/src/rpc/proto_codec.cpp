// SPDX-License-Identifier: Apache-2.0
// Reflection over the generated descriptors: one converter for every message of the wire.
#include "rpc/proto_codec.hpp"

#include <memory>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/message.h>

#include "base/json_limits.hpp"
#include "base/text_util.hpp"
#include "guest_api.pb.h"
#include "prpc.pb.h"
#include "vmm_rpc.pb.h"

namespace dstackvmm::rpc {

namespace pb = google::protobuf;

namespace {

// Naming one message of each file keeps their descriptors linked in and registered.
const pb::DescriptorPool* pool() {
  static const pb::DescriptorPool* p = [] {
    (void)vmm::Id::descriptor();
    (void)guest_api::Id::descriptor();
    (void)prpc::PrpcError::descriptor();
    (void)pb::Empty::descriptor();
    return pb::DescriptorPool::generated_pool();
  }();
  return p;
}

std::unique_ptr<pb::Message> new_message(const std::string& type) {
  const pb::Descriptor* d = pool()->FindMessageTypeByName(type);
  if (!d) return nullptr;
  const pb::Message* proto = pb::MessageFactory::generated_factory()->GetPrototype(d);
  return proto ? std::unique_ptr<pb::Message>(proto->New()) : nullptr;
}

json scalar_to_json(const pb::Message& m, const pb::FieldDescriptor* f, int index) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = index >= 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      return f->type() == pb::FieldDescriptor::TYPE_BYTES ? json(to_hex(s)) : json(s);
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64: return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT32: return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64: return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_BOOL: return rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
    default: return nullptr;  // the wire has no floats or enums
  }
}

json message_to_json(const pb::Message& m) {
  json out = json::object();
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    bool is_message = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
    if (f->is_repeated()) {
      json list = json::array();
      for (int k = 0; k < r->FieldSize(m, f); ++k)
        list.push_back(is_message ? message_to_json(r->GetRepeatedMessage(m, f, k)) : scalar_to_json(m, f, k));
      out[f->name()] = std::move(list);
    } else if (f->has_presence() && !r->HasField(m, f)) {
      out[f->name()] = nullptr;
    } else {
      out[f->name()] = is_message ? message_to_json(r->GetMessage(m, f)) : scalar_to_json(m, f, -1);
    }
  }
  return out;
}

void fill(pb::Message& m, const json& value);

// One JSON value into field `f` (appended when repeated); values of the wrong shape are skipped.
void set_field(pb::Message& m, const pb::FieldDescriptor* f, const json& v) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      if (!v.is_string()) return;
      std::string s = v.get<std::string>();
      if (f->type() == pb::FieldDescriptor::TYPE_BYTES) {
        auto raw = from_hex(s);
        if (!raw) return;
        s = std::move(*raw);
      }
      rep ? r->AddString(&m, f, std::move(s)) : r->SetString(&m, f, std::move(s));
      return;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xffffffffull) return;
      rep ? r->AddUInt32(&m, f, v.get<uint32_t>()) : r->SetUInt32(&m, f, v.get<uint32_t>());
      return;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      if (!v.is_number_unsigned()) return;
      rep ? r->AddUInt64(&m, f, v.get<uint64_t>()) : r->SetUInt64(&m, f, v.get<uint64_t>());
      return;
    case pb::FieldDescriptor::CPPTYPE_INT32:
      if (!v.is_number_integer()) return;
      rep ? r->AddInt32(&m, f, v.get<int32_t>()) : r->SetInt32(&m, f, v.get<int32_t>());
      return;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      if (!v.is_number_integer()) return;
      rep ? r->AddInt64(&m, f, v.get<int64_t>()) : r->SetInt64(&m, f, v.get<int64_t>());
      return;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      if (!v.is_boolean()) return;
      rep ? r->AddBool(&m, f, v.get<bool>()) : r->SetBool(&m, f, v.get<bool>());
      return;
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
      if (!v.is_object()) return;
      fill(rep ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f), v);
      return;
    }
    default: return;
  }
}

// The fields `value` names, by their proto names; nulls (unset) and unknown keys skipped.
void fill(pb::Message& m, const json& value) {
  if (!value.is_object()) return;
  for (const auto& [key, v] : value.items()) {
    const pb::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(key);
    if (!f || v.is_null()) continue;
    if (f->is_repeated() && v.is_array())
      for (const auto& e : v) set_field(m, f, e);
    else if (!f->is_repeated())
      set_field(m, f, v);
  }
}

// Walks a message's wire bytes by its descriptor, without allocating: every field occurrence
// (and every element of a packed list) counts against kRequestJsonLimits.max_values, as a
// JSON request's values do; nested messages are walked too, at most max_depth deep.
bool within_limits(const pb::Descriptor* d, std::string_view b, size_t depth, size_t* values, std::string* why) {
  const auto& limits = internal::kRequestJsonLimits;
  if (depth > limits.max_depth) return (*why = "messages nested deeper than " + std::to_string(limits.max_depth)), false;
  size_t at = 0;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && at < b.size(); shift += 7) {
      uint8_t byte = static_cast<uint8_t>(b[at++]);
      *v |= uint64_t{byte & 0x7fu} << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  };
  auto too_many = [&] {
    *why = "more than " + std::to_string(limits.max_values) + " values (a list too long for this request)";
    return false;
  };
  while (at < b.size()) {
    uint64_t key, len;
    if (!varint(&key)) return (*why = "not a valid " + d->full_name() + " message"), false;
    if (++*values > limits.max_values) return too_many();
    const pb::FieldDescriptor* f = d->FindFieldByNumber(static_cast<int>(key >> 3));
    switch (key & 7) {
      case 0:
        if (!varint(&len)) return (*why = "not a valid " + d->full_name() + " message"), false;
        break;
      case 1: at += 8; break;
      case 5: at += 4; break;
      case 2: {
        if (!varint(&len) || len > b.size() - at) return (*why = "not a valid " + d->full_name() + " message"), false;
        std::string_view inner = b.substr(at, static_cast<size_t>(len));
        at += static_cast<size_t>(len);
        if (f && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          if (!within_limits(f->message_type(), inner, depth + 1, values, why)) return false;
        } else if (f && f->is_packed()) {  // a packed list: one value per element
          for (size_t i = 0; i < inner.size(); ++i)
            if (!(static_cast<uint8_t>(inner[i]) & 0x80) && ++*values > limits.max_values) return too_many();
        }
        break;
      }
      default:
        return (*why = "not a valid " + d->full_name() + " message"), false;
    }
    if (at > b.size()) return (*why = "not a valid " + d->full_name() + " message"), false;
  }
  return true;
}

}  // namespace

bool proto_to_json(const std::string& type, std::string_view bytes, json& out, std::string* why) {
  auto m = new_message(type);
  if (!m) {
    if (why) *why = "no message type " + type;
    return false;
  }
  // Counted on the wire before anything is allocated: parsed, every element costs a message
  // and then a JSON value (6.5 MB of 500k ports took 290 MB).
  size_t values = 0;
  std::string bad;
  if (!within_limits(m->GetDescriptor(), bytes, 0, &values, &bad)) {
    if (why) *why = bad;
    return false;
  }
  if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    if (why) *why = "not a valid " + type + " message";
    return false;
  }
  out = message_to_json(*m);
  return true;
}

std::string json_to_proto(const std::string& type, const json& value) {
  auto m = new_message(type);
  if (!m) return {};
  fill(*m, value);
  return m->SerializeAsString();
}

std::string prpc_error(const std::string& message) {
  prpc::PrpcError e;
  e.set_message(message);
  return e.SerializeAsString();
}

namespace {

json field_schema(const pb::FieldDescriptor* f) {
  json s;
  switch (f->type()) {
    case pb::FieldDescriptor::TYPE_STRING: s = {{"type", "string"}}; break;
    case pb::FieldDescriptor::TYPE_BYTES: s = {{"type", "string"}, {"description", "bytes as lowercase hex (0x accepted on input)"}}; break;
    case pb::FieldDescriptor::TYPE_BOOL: s = {{"type", "boolean"}}; break;
    case pb::FieldDescriptor::TYPE_UINT32: s = {{"type", "integer"}, {"format", "uint32"}, {"minimum", 0}}; break;
    case pb::FieldDescriptor::TYPE_UINT64: s = {{"type", "integer"}, {"format", "uint64"}, {"minimum", 0}}; break;
    case pb::FieldDescriptor::TYPE_INT32: s = {{"type", "integer"}, {"format", "int32"}}; break;
    case pb::FieldDescriptor::TYPE_INT64: s = {{"type", "integer"}, {"format", "int64"}}; break;
    case pb::FieldDescriptor::TYPE_MESSAGE: s = {{"$ref", "#/components/schemas/" + std::string(f->message_type()->full_name())}}; break;
    default: s = json::object(); break;  // the wire has no floats or enums
  }
  if (f->is_repeated()) return {{"type", "array"}, {"items", s}};
  if (f->has_presence()) return {{"anyOf", json::array({s, {{"type", "null"}}})}};
  return s;
}

}  // namespace

json message_schemas(const std::string& package) {
  json out = json::object();
  for (const char* file : {"vmm_rpc.proto", "guest_api.proto"}) {
    const pb::FileDescriptor* fd = pool()->FindFileByName(file);
    if (!fd || fd->package() != package) continue;
    for (int i = 0; i < fd->message_type_count(); ++i) {
      const pb::Descriptor* d = fd->message_type(i);
      json props = json::object();
      for (int k = 0; k < d->field_count(); ++k) props[std::string(d->field(k)->name())] = field_schema(d->field(k));
      out[std::string(d->full_name())] = {{"type", "object"}, {"properties", props}};
    }
  }
  return out;
}

}  // namespace dstackvmm::rpc
