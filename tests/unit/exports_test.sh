#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libdstackvmm.so exports the public API and nothing else: no dstackvmm::internal, no Impl
# member, no template instance of std::, toml++ or nlohmann (nm -DC).
#   exports_test.sh BUILD_ROOT
set -u
build=$1
lib=$(ls "$build"/libvmm/libdstackvmm.so.*.*.* | head -1)
fail=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi; }
names=$(nm -DC --defined-only "$lib" | cut -d' ' -f3- | sed 's/(.*//')
echo "$(wc -l <<< "$names") symbols exported by $(basename "$lib")"
stray=$(grep -vE '^(dstackvmm::|vtable for dstackvmm::|typeinfo for dstackvmm::|typeinfo name for dstackvmm::)' <<< "$names")
check '[ -z "$stray" ]' "only dstackvmm:: symbols${stray:+ (not: $(head -3 <<< "$stray" | tr '\n' ';'))}"
private=$(grep -E 'dstackvmm::internal::|::Impl::|dstackvmm::Vm::|dstackvmm::rpc::|dstackvmm::server::' <<< "$names")
check '[ -z "$private" ]' "no private symbol${private:+ (not: $(head -3 <<< "$private" | tr '\n' ';'))}"
check 'grep -qx "dstackvmm::VmManager::open" <<< "$names"' "the public API is there (VmManager::open)"
check 'grep -qx "dstackvmm::VmManager::subscribe" <<< "$names"' "the public API is there (VmManager::subscribe)"
check 'nm -C "$build/libvmm/libdstackvmm.a" 2>/dev/null | grep -q "T dstackvmm::internal::parse_json"' "internal code is in the static library the tools link"

# exported LIB-GLOB: the names a shared library exports (defined, demangled, without arguments).
exported() {
  local lib; lib=$(ls "$build"/libvmm/$1 | head -1)
  nm -DC --defined-only "$lib" | cut -d' ' -f3- | sed 's/(.*//'
}
# only NAMES ALLOWED-REGEX WHAT: the library exports nothing but ALLOWED, and no Impl member.
only() {
  local stray; stray=$(grep -vE "$2" <<< "$1"; grep -E "::Impl(::|\b)" <<< "$1")
  check '[ -z "$stray" ]' "$3${stray:+ (not: $(head -3 <<< "$stray" | tr '\n' ';'))}"
}

# The client library exports the client API, the error and status names its results carry, nothing of
# the engine it links statically.
cnames=$(exported 'libdstackvmm-client.so.*.*.*')
echo "$(wc -l <<< "$cnames") symbols exported by libdstackvmm-client.so"
only "$cnames" '^((vtable for |typeinfo for |typeinfo name for )?dstackvmm::client::|dstackvmm::error_code_name$|dstackvmm::error_code_from_name$|dstackvmm::vm_status_name$|dstackvmm::vm_status_from_name$)' \
  "the client library exports only dstackvmm::client::"
check 'grep -qx "dstackvmm::client::VmmClient::create" <<< "$cnames"' "the client API is there (VmmClient::create)"

# The host API server's library exports HostApiServer's API, none of its Impl and nothing else
# of the server part or the engine inside it.
snames=$(exported 'libdstackvmm-server.so.*.*.*')
echo "$(wc -l <<< "$snames") symbols exported by libdstackvmm-server.so"
only "$snames" '^((vtable for |typeinfo for |typeinfo name for )?dstackvmm::server::HostApiServer)' "the server library exports only HostApiServer's API"
check 'grep -qx "dstackvmm::server::HostApiServer::start" <<< "$snames"' "the server API is there (HostApiServer::start)"
exit $fail
