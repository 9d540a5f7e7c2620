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

# The client library exports the client API and the error names its Results carry, nothing of
# the engine it links statically.
clib=$(ls "$build"/libvmm/libdstackvmm-client.so.*.*.* | head -1)
cnames=$(nm -DC --defined-only "$clib" | cut -d' ' -f3- | sed 's/(.*//')
echo "$(wc -l <<< "$cnames") symbols exported by $(basename "$clib")"
cstray=$(grep -vE '^((vtable for |typeinfo for |typeinfo name for )?dstackvmm::client::|dstackvmm::error_code_name$|dstackvmm::error_code_from_name$)' <<< "$cnames"; grep -E "::Impl::" <<< "$cnames")
check '[ -z "$cstray" ]' "the client library exports only dstackvmm::client::${cstray:+ (not: $(head -3 <<< "$cstray" | tr '\n' ';'))}"
check 'grep -qx "dstackvmm::client::VmmClient::create" <<< "$cnames"' "the client API is there (VmmClient::create)"

# The host API server's library exports HostApiServer's API, none of its Impl and nothing else
# of the server part or the engine inside it.
slib=$(ls "$build"/libvmm/libdstackvmm-server.so.*.*.* | head -1)
snames=$(nm -DC --defined-only "$slib" | cut -d' ' -f3- | sed 's/(.*//')
echo "$(wc -l <<< "$snames") symbols exported by $(basename "$slib")"
sstray=$(grep -vE '^((vtable for |typeinfo for |typeinfo name for )?dstackvmm::server::HostApiServer)' <<< "$snames"; grep -E "::Impl" <<< "$snames")
check '[ -z "$sstray" ]' "the server library exports only HostApiServer's API${sstray:+ (not: $(head -3 <<< "$sstray" | tr '\n' ';'))}"
check 'grep -qx "dstackvmm::server::HostApiServer::start" <<< "$snames"' "the server API is there (HostApiServer::start)"
exit $fail
