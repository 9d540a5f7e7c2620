// SPDX-License-Identifier: Apache-2.0
// The pieces of a TEE launch that are pure functions, against upstream's own vectors
// (tee-launch.md §7, §13, §14; the [computed] values there were computed with upstream's
// algorithm): MrConfig V1/V3, RFC 8785, the GPU policy and init-script hashes, MrConfig
// selection, .instance_info, what a launch reads of the compose, QEMU's version and the SEV
// capabilities, the swtpm launcher's spec.
#include <catch2/catch.hpp>

#include <dstackvmm/mr_config.hpp>
#include <dstackvmm/vm_launcher.hpp>

#include "base/crypto.hpp"
#include "base/text_util.hpp"
#include "qemu/qemu_version.hpp"
#include "qemu/sev_probe.hpp"
#include "tee/canonical_json.hpp"
#include "tee/compose_facts.hpp"
#include "tee/image_material.hpp"
#include "tee/mr_config_plan.hpp"

using namespace dstackvmm;
using namespace dstackvmm::internal;
using nlohmann::json;

namespace {
std::string bytes(char c, size_t n) { return std::string(n, c); }
std::string hex_of(const std::string& b) { return to_hex(b); }
const std::string kBase = R"("name":"test","runner":"docker-compose")";
}  // namespace

TEST_CASE("RFC 8785: keys by UTF-16 code units, no whitespace, ECMAScript numbers", "[tee][jcs]") {
  CHECK(canonical_json(json::parse(R"({"b":1,"a":[true,null,"x"],"c":{"z":1,"y":2}})")) ==
        R"({"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}})");
  // U+10000 is a surrogate pair (0xD800...) and sorts before U+FFFD in UTF-16, after it in UTF-8.
  CHECK(canonical_json(json::parse("{\"\xef\xbf\xbd\":1,\"\xf0\x90\x80\x80\":2}")) == "{\"\xf0\x90\x80\x80\":2,\"\xef\xbf\xbd\":1}");
  CHECK(canonical_json(json::parse("[1.0, 1.5, 1e21, 1e-7, 0.000001, -0.0, 123456789012345680000, 4.5e-5]")) ==
        "[1,1.5,1e+21,1e-7,0.000001,0,123456789012345680000,0.000045]");
  CHECK(canonical_json(json::parse(R"({"s":"a/b\"\\\n\u0001é"})")) == "{\"s\":\"a/b\\\"\\\\\\n\\u0001\xc3\xa9\"}");
}

TEST_CASE("MrConfigV3: upstream's canonical document and its hashes", "[tee][mrconfig]") {
  MrConfigV3 c;
  c.app_id = bytes('\x11', 20);
  c.compose_hash = bytes('\x22', 32);
  c.gpu_policy_hash = bytes('\x55', 32);
  c.key_provider = "kms";
  c.key_provider_id = bytes('\x33', 32);
  c.instance_id = bytes('\x44', 20);
  const std::string doc = mr_config_document(c);
  CHECK(doc ==
        R"({"app_id":"1111111111111111111111111111111111111111","compose_hash":"2222222222222222222222222222222222222222222222222222222222222222","gpu_policy_hash":"5555555555555555555555555555555555555555555555555555555555555555","instance_id":"4444444444444444444444444444444444444444","key_provider":"kms","key_provider_id":"3333333333333333333333333333333333333333333333333333333333333333","version":3})");
  CHECK(*parse_mr_config(doc) == c);
  CHECK(hex_of(mr_config_v3_digest(doc)) == "90e5cffa571b22c2ca846872d6fb7b071aa1346f1a1f87f72869c47b39d94099");
  CHECK(snp_host_data(doc) == "kOXP+lcbIsLKhGhy1vt7BxqhNG8aH4f3KGnEeznZQJk=");
  CHECK(tdx_mr_config_id_v3(doc) == "A5Dlz/pXGyLCyoRoctb7ewcaoTRvGh+H9yhpxHs52UCZAAAAAAAAAAAAAAAAAAAA");
  // A pretty-printed document parses to the same values but binds another digest.
  std::string pretty = json::parse(doc).dump(2);
  CHECK(*parse_mr_config(pretty) == c);
  CHECK(snp_host_data(pretty) != snp_host_data(doc));
  // Changing the app id or the GPU policy changes both bindings.
  MrConfigV3 flipped = c;
  (*flipped.app_id)[0] = '\x12';
  CHECK(snp_host_data(mr_config_document(flipped)) != snp_host_data(doc));
  flipped = c;
  (*flipped.gpu_policy_hash)[0] = '\x56';
  CHECK(tdx_mr_config_id_v3(mr_config_document(flipped)) != tdx_mr_config_id_v3(doc));
}

TEST_CASE("MrConfigV3: the document of upstream's SNP sys-config test, absent fields, init scripts", "[tee][mrconfig]") {
  MrConfigV3 c;
  c.app_id = bytes('\x11', 20);
  c.compose_hash = bytes('\x22', 32);
  c.instance_id = bytes('\x44', 20);
  std::string doc = mr_config_document(c);
  CHECK(doc ==
        R"({"app_id":"1111111111111111111111111111111111111111","compose_hash":"2222222222222222222222222222222222222222222222222222222222222222","instance_id":"4444444444444444444444444444444444444444","key_provider":"none","version":3})");
  CHECK(hex_of(mr_config_v3_digest(doc)) == "514dd95cd7db15a3e18a5d9f25f8d1d9d7e3457a650e1963ad4fb63a8a4ac543");
  CHECK(snp_host_data(doc) == "UU3ZXNfbFaPhil2fJfjR2dfjRXplDhljrU+2OopKxUM=");
  // A document without app_id parses (app_id absent) and comes back with version 3.
  auto bare = parse_mr_config(R"({"compose_hash":"2222222222222222222222222222222222222222222222222222222222222222","key_provider":"none"})");
  REQUIRE(bare.ok());
  CHECK_FALSE(bare->app_id);
  CHECK(mr_config_document(*bare) ==
        R"({"compose_hash":"2222222222222222222222222222222222222222222222222222222222222222","key_provider":"none","version":3})");
  // Init script hashes are bound in order.
  c.init_script_hashes = std::vector<std::string>{bytes('\xaa', 32), bytes('\xbb', 32)};
  auto ordered = mr_config_document(c);
  CHECK(*parse_mr_config(ordered) == c);
  std::swap((*c.init_script_hashes)[0], (*c.init_script_hashes)[1]);
  CHECK(snp_host_data(mr_config_document(c)) != snp_host_data(ordered));
  // What upstream's parser refuses.
  for (const char* bad : {R"({"compose_hash":"22","key_provider":"none","extra":1})", R"({"compose_hash":"0x22","key_provider":"none"})",
                          R"({"key_provider":"none"})", R"({"compose_hash":"22","key_provider":"sgx"})",
                          R"({"compose_hash":"22","key_provider":"none","init_script_hashes":["11"]})"}) {
    INFO(bad);
    auto r = parse_mr_config(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind("failed to parse mr_config document: ", 0) == 0);
  }
  json six = json::parse(R"({"compose_hash":"22","key_provider":"none"})");
  six["init_script_hashes"] = std::vector<std::string>(6, std::string(64, 'a'));
  CHECK(parse_mr_config(six.dump()).error().message.find("at most 5 hashes") != std::string::npos);
}

TEST_CASE("MRCONFIGID V1 is the compose hash behind 0x01", "[tee][mrconfig]") {
  std::string compose = R"({"manifest_version":2,"name":"web","runner":"docker-compose"})";
  std::string raw(1, '\x01');
  raw += sha256(compose) + std::string(15, '\0');
  CHECK(mrconfigid_v1(compose) == base64(raw));
  CHECK(mrconfigid_v1(compose).size() == 64);
}

TEST_CASE("GPU policy and init script hashes as upstream computes them", "[tee][mrconfig]") {
  auto policy_hash = [](const std::string& compose) {
    auto f = read_compose(compose);
    REQUIRE(f.ok());
    return hex_of(sha256(canonical_json(f->gpu_policy)));
  };
  const std::string empty = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
  CHECK(policy_hash("{\"manifest_version\":2," + kBase + "}") == empty);
  CHECK(policy_hash("{\"manifest_version\":2," + kBase + R"(,"requirements":{}})") == empty);
  CHECK(policy_hash("{\"manifest_version\":2," + kBase + R"(,"requirements":{"gpu_policy":{}}})") == empty);
  CHECK(policy_hash("{\"manifest_version\":2," + kBase + R"(,"requirements":{"gpu_policy":{"attest_gpu":true}}})") ==
        "81f5d3ad40653341232238c4ca656bddddc297d6382ae2ab391e4bb36dd80b66");
  CHECK(policy_hash("{\"manifest_version\":2," + kBase + R"(,"requirements":{"gpu_policy":{"rego": "package policy", "allow_debug": false}}})") ==
        hex_of(sha256(R"({"allow_debug":false,"rego":"package policy"})")));
  CHECK(hex_of(sha256("echo one")) == "5d103558eaead1115ccc8d98a33ccff8bb622fde768a7cfcef2cc9f7cf455f49");
}

TEST_CASE("MrConfig version selection follows upstream's table", "[tee][mrconfig]") {
  using V = MrConfigVersion;
  std::optional<std::string> none;
  CHECK(*select_mr_config_version(false, none, Platform::kAmdSevSnp, false, false) == V::kV3);
  CHECK(*select_mr_config_version(false, none, Platform::kTdx, false, false) == V::kNone);
  CHECK(*select_mr_config_version(false, none, Platform::kTdx, true, false) == V::kV1);
  CHECK(*select_mr_config_version(false, none, Platform::kTdx, true, true) == V::kV3);
  auto refused = select_mr_config_version(false, none, Platform::kTdx, false, true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.rfind("key provider ID requires MrConfigV3, but use_mrconfigid is disabled", 0) == 0);
  CHECK(*select_mr_config_version(true, none, Platform::kAmdSevSnp, true, true) == V::kNone);
  CHECK(*select_mr_config_version(true, std::string("dstack-amd-sev-snp"), Platform::kTdx, false, false) == V::kV3);
  CHECK(*select_mr_config_version(false, none, Platform::kNone, true, true) == V::kNone);
}

TEST_CASE(".instance_info: seed rules, app id, no_instance_id", "[tee][mrconfig]") {
  std::string compose = "{\"manifest_version\":\"3\"," + kBase + R"(,"key_provider":"kms","key_provider_id":"abcd","init_script":"echo one"})";
  auto facts = *read_compose(compose);
  int draws = 0;
  auto random = [&](size_t n) { ++draws; return std::string(n, '\x07'); };
  std::string app = std::string(40, 'a');
  // No seed yet: one is drawn; the instance id is sha256(seed || app id)[0..20].
  auto first = prepare_mr_config_v3(compose, facts, R"({"app_id":")" + app + R"("})", false, random);
  REQUIRE(first.ok());
  CHECK(draws == 1);
  std::string seed(20, '\x07');
  std::string instance = sha256(seed + *from_hex(app)).substr(0, 20);
  CHECK(first->instance_info == R"({"instance_id_seed":")" + to_hex(seed) + R"(","instance_id":")" + to_hex(instance) +
                                    R"(","app_id":")" + app + R"("})");
  auto doc = *parse_mr_config(first->document);
  CHECK(doc.instance_id == instance);
  CHECK(doc.app_id == *from_hex(app));
  CHECK(doc.key_provider == "kms");
  CHECK(doc.key_provider_id == std::string("\xab\xcd"));
  CHECK(doc.init_script_hashes == std::vector<std::string>{sha256("echo one")});
  CHECK_FALSE(doc.gpu_policy_hash);
  // A kms VM keeps its seed from start to start: the same document.
  auto again = prepare_mr_config_v3(compose, facts, first->instance_info, false, random);
  CHECK(draws == 1);
  CHECK(again->document == first->document);
  // Key provider none: a fresh seed at every start.
  std::string none = "{\"manifest_version\":2," + kBase + R"(,"key_provider":"none","key_provider_id":"01"})";
  auto fresh = prepare_mr_config_v3(none, *read_compose(none), first->instance_info, true, random);
  CHECK(draws == 2);
  CHECK(parse_mr_config(fresh->document)->gpu_policy_hash);  // GPUs attached
  CHECK_FALSE(parse_mr_config(fresh->document)->init_script_hashes);  // manifest_version 2 binds no init scripts
  // No file: the app id is the compose hash's first 20 bytes; no_instance_id leaves it out.
  std::string noid = "{\"manifest_version\":\"3\"," + kBase + R"(,"kms_enabled":true,"no_instance_id":true})";
  auto anon = prepare_mr_config_v3(noid, *read_compose(noid), std::nullopt, false, random);
  auto anon_doc = *parse_mr_config(anon->document);
  CHECK(anon_doc.app_id == sha256(noid).substr(0, 20));
  CHECK_FALSE(anon_doc.instance_id);
  CHECK(anon_doc.init_script_hashes == std::vector<std::string>{});
  CHECK(json::parse(anon->instance_info)["instance_id"] == "");
  // What the file may not hold.
  CHECK(prepare_mr_config_v3(compose, facts, R"({"app_id":"abcd"})", false, random).error().message ==
        "invalid app ID length: expected 20 bytes, got 2");
  CHECK(prepare_mr_config_v3(compose, facts, "not json", false, random).error().message.rfind("failed to get instance info", 0) == 0);
  CHECK(prepare_mr_config_v3(compose, facts, R"({"instance_id_seed":"xyz"})", false, random).error().message ==
        "failed to get instance info: `instance_id_seed` is not hex");
  CHECK(parse_instance_info(R"({"unknown":1,"app_id":""})").ok());  // unknown keys are ignored
}

TEST_CASE("the compose as a launch reads it: upstream's vectors", "[tee][compose]") {
  auto mv = [](const std::string& value) { return read_compose("{\"manifest_version\":" + value + "," + kBase + "}"); };
  CHECK(mv(R"("3")")->manifest_version == "3");
  CHECK(mv("1")->manifest_version == "1");
  CHECK(mv("2")->manifest_version_number == 2u);
  CHECK(mv(R"(" 3 ")")->manifest_version == "3");
  CHECK(mv("3").error().message.find("legacy versions 1 and 2") != std::string::npos);
  CHECK(mv("0").error().message.find("legacy versions 1 and 2") != std::string::npos);
  CHECK(mv("-1").error().message.find("positive integer") != std::string::npos);
  CHECK_FALSE(mv("2.5").ok());
  CHECK(mv(R"("0")").error().message.find("greater than 0") != std::string::npos);
  CHECK(mv(R"("03")").error().message.find("canonical integer string") != std::string::npos);
  CHECK_FALSE(mv(R"("+3")").ok());
  CHECK(mv(R"("")").error().message.find("must not be empty") != std::string::npos);
  CHECK_FALSE(mv(R"("3.0")").ok());
  CHECK_FALSE(mv(R"("4294967296")").ok());

  auto init = [](const std::string& value) { return read_compose("{\"manifest_version\":2," + kBase + ",\"init_script\":" + value + "}"); };
  CHECK(init(R"("echo one")")->init_scripts == std::vector<std::string>{"echo one"});
  CHECK(init(R"(["echo one","echo two"])")->init_scripts.size() == 2);
  CHECK(init("null")->init_scripts.empty());
  CHECK_FALSE(init(R"(["echo one",2])").ok());
  CHECK(init(R"(["1","2","3","4","5","6"])").error().message.find("at most 5") != std::string::npos);

  auto req = [](const std::string& value) { return read_compose("{\"manifest_version\":2," + kBase + ",\"requirements\":" + value + "}"); };
  auto full = req(R"({"os_version":">=0.6.1","platforms":["dstack-gcp-tdx","dstack-tdx"],"tdx_measure_acpi_tables":true,"launch_token_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","gpu_policy":{"rego":"package policy\n\ndefault nv_match = false\n","allow_devtools":true,"allow_debug":true,"allow_insecure_boot":true}})");
  REQUIRE(full.ok());
  CHECK(full->tdx_measure_acpi_tables == true);
  CHECK(req(R"({"os_version_policy":">=0.6.1"})").error().message.find("unknown field") != std::string::npos);
  CHECK(req(R"({"gpu_policy":{"rego":"package policy","allow_debugger":true}})").error().message.find("unknown field") != std::string::npos);
  CHECK(req(R"({"attest_gpu":false})").error().message.find("unknown field") != std::string::npos);

  // key_provider_id: hex without 0x, as upstream's parser takes it.
  auto kp = [](const std::string& value) { return read_compose("{\"manifest_version\":2," + kBase + ",\"key_provider_id\":" + value + "}"); };
  CHECK(kp(R"("ABcd")")->key_provider_id == std::string("\xab\xcd"));
  CHECK_FALSE(kp(R"("0xabcd")").ok());
  CHECK_FALSE(kp(R"("my-test-provider")").ok());
  CHECK_FALSE(read_compose("{\"manifest_version\":2," + kBase + ",\"kms_enabled\":\"yes\"}").ok());
}

TEST_CASE("the key provider and the software TPM decision, as upstream decides them", "[tee][swtpm]") {
  CHECK(*key_provider_from_compose(R"({"key_provider":"tpm"})") == "tpm");
  CHECK(*key_provider_from_compose(R"({"kms_enabled":true,"local_key_provider_enabled":true})") == "kms");
  CHECK(*key_provider_from_compose(R"({"local_key_provider_enabled":true})") == "local");
  CHECK(*key_provider_from_compose(R"({"key_provider":null,"kms_enabled":false})") == "none");
  CHECK(key_provider_from_compose(R"({"key_provider":"sgx"})").error().message.rfind("invalid key_provider", 0) == 0);
  CHECK(key_provider_from_compose("[]").error().message == "invalid app compose JSON");
  std::optional<std::string> none;
  CHECK(needs_swtpm("tpm", none));
  CHECK(needs_swtpm("tpm", std::string("dstack-tdx")));
  CHECK_FALSE(needs_swtpm("tpm", std::string("dstack-gcp-tdx")));
  CHECK_FALSE(needs_swtpm("tpm", std::string("dstack-aws-nitro-tpm")));
  CHECK_FALSE(needs_swtpm("kms", std::string("dstack-tdx")));
  CHECK_FALSE(needs_swtpm("kms", std::string("dstack-gcp-tdx")));
}

TEST_CASE("tdx_attestation_variant: upstream's resolution and memory examples", "[tee][tdx]") {
  for (auto [memory, want] : {std::pair{1024u, "legacy"}, {2047u, "legacy"}, {2048u, "lite"}, {2049u, "legacy"}, {3071u, "legacy"},
                              {3072u, "lite"}, {8192u, "lite"}}) {
    INFO(memory);
    CHECK(resolve_tdx_attestation_variant("auto", true, std::nullopt, memory, true) == want);
  }
  CHECK(resolve_tdx_attestation_variant("auto", true, std::nullopt, 3072, false) == "legacy");
  CHECK(resolve_tdx_attestation_variant("lite", true, true, 2048, true) == "legacy");   // the compose's requirement wins
  CHECK(resolve_tdx_attestation_variant("legacy", true, false, 2048, true) == "lite");
  CHECK(resolve_tdx_attestation_variant("lite", false, false, 4096, true) == "legacy");  // not a TDX TEE
}

TEST_CASE("QEMU's version: upstream's parse vectors", "[tee][qemu]") {
  auto v = [](const char* out) { return parse_qemu_version_output(out); };
  CHECK(*v("QEMU emulator version 8.2.2 (Debian 2:8.2.2+ds-0ubuntu1.4+tdx1.0)\nCopyright (c) 2003-2023 Fabrice Bellard and the QEMU Project developers") == "8.2.2");
  CHECK(*v("QEMU emulator version 9.1.0\nCopyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers") == "9.1.0");
  CHECK(*v("QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1.2)\nCopyright (c) 2003-2023 Fabrice Bellard and the QEMU Project developers") == "8.2.2");
  CHECK(*v("QEMU emulator version 9.0.0-rc1\nCopyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers") == "9.0.0-rc1");
  CHECK(*v("Some unusual format 8.1.5 with version info") == "8.1.5");
  CHECK(v("No version information here").error().message == "Could not parse QEMU version from output");
  // This host's QEMU answers, and a program that is no QEMU is an error, not a guess.
  if (auto qemu = detect_qemu_version("qemu-system-x86_64"); qemu.ok()) CHECK(std::isdigit(static_cast<unsigned char>((*qemu)[0])));
  CHECK_FALSE(detect_qemu_version("/bin/false").ok());
}

TEST_CASE("SEV-SNP capabilities from QMP: upstream's transcript and its failures", "[tee][snp]") {
  auto caps = parse_sev_capabilities(
      "{\"QMP\":{\"version\":{\"qemu\":{\"major\":10,\"minor\":0,\"micro\":2}}}}\n{\"return\":{}}\n"
      "{\"return\":{\"reduced-phys-bits\":1,\"cbitpos\":51,\"cert-chain\":\"ignored\",\"pdh\":\"ignored\",\"cpu0-id\":\"ignored\"}}\n"
      "{\"return\":{}}\n");
  REQUIRE(caps.ok());
  CHECK(caps->cbitpos == 51);
  CHECK(caps->reduced_phys_bits == 1);
  CHECK(parse_sev_capabilities("garbage\n{\"error\":{\"class\":\"GenericError\",\"desc\":\"SEV not available\"}}\n").error().message ==
        R"(QMP query-sev-capabilities failed: {"class":"GenericError","desc":"SEV not available"})");
  CHECK(parse_sev_capabilities("{\"return\":{}}\n").error().message == "QMP query-sev-capabilities did not return cbitpos/reduced-phys-bits");
  CHECK(parse_sev_capabilities("{\"return\":{\"cbitpos\":-1,\"reduced-phys-bits\":1}}").error().message == "QMP cbitpos does not fit in u32");
}

TEST_CASE("the AWS measurement's boot PCR digest is read from its CBOR", "[tee][aws]") {
  std::string digest(32, '\x5a');
  std::string cbor = "\xa2\x63"
                     "abc\x01\x6f"
                     "boot_pcr_digest\x58\x20" +
                     digest;
  CHECK(*aws_boot_pcr_digest(cbor) == digest);
  CHECK(aws_boot_pcr_digest("\xa1\x6f" "boot_pcr_digest\x42\x01\x02").error().message ==
        "AwsOsImageMeasurement: boot_pcr_digest has invalid length 2, expected 32");
  CHECK(aws_boot_pcr_digest("\xa1\x6f" "boot_pcr_digest\x58\x20").error().message.rfind("AwsOsImageMeasurement: failed to decode CBOR", 0) == 0);
  CHECK(aws_boot_pcr_digest(std::string(64, '\x9f')).error().message.rfind("AwsOsImageMeasurement: failed to decode CBOR", 0) == 0);
}

TEST_CASE("the swtpm launcher's spec: upstream's pretty JSON, its defaults and required keys", "[tee][swtpm]") {
  LaunchSpec s;
  s.qemu = {"qemu-system-x86_64", "-m", "1024M"};
  s.swtpm = {"/usr/bin/swtpm", "socket"};
  s.swtpm_socket = "/vm/swtpm/swtpm.sock";
  std::string text = launch_spec_json(s);
  CHECK(text ==
        "{\n  \"qemu\": {\n    \"command\": \"qemu-system-x86_64\",\n    \"args\": [\n      \"-m\",\n      \"1024M\"\n    ]\n  },\n"
        "  \"swtpm\": {\n    \"command\": \"/usr/bin/swtpm\",\n    \"args\": [\n      \"socket\"\n    ]\n  },\n"
        "  \"swtpm_socket\": \"/vm/swtpm/swtpm.sock\",\n  \"startup_timeout_ms\": 5000,\n  \"shutdown_timeout_ms\": 10000\n}");
  CHECK(*parse_launch_spec(text) == s);
  auto minimal = parse_launch_spec(R"({"qemu":{"command":"q"},"swtpm":{"command":"t"},"swtpm_socket":"/s","future":1})");
  REQUIRE(minimal.ok());
  CHECK(minimal->qemu == std::vector<std::string>{"q"});
  CHECK(minimal->startup_timeout_ms == 5000);
  CHECK(minimal->shutdown_timeout_ms == 10000);
  CHECK(parse_launch_spec(R"({"qemu":{"command":"q"},"swtpm":{"command":"t"}})").error().message ==
        "failed to parse launch spec: missing field `swtpm_socket`");
  CHECK(parse_launch_spec(R"({"launches":[]})").error().message == "failed to parse launch spec: missing field `qemu`");
}
