#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The longest functions of the given folders (lines from signature to closing brace), longest
# first, lambdas left out: what the "no function over ~60 lines in the engine" rule is measured
# with. Needs universal-ctags (apt-get install universal-ctags); not part of the test suite.
#   scripts/function_sizes.sh [FOLDER...]   (default: the engine's folders)
set -eu
cd "$(dirname "$0")/.."
command -v ctags >/dev/null || { echo "universal-ctags is not installed (apt-get install universal-ctags)" >&2; exit 2; }
[ $# -gt 0 ] || set -- libvmm/src/{base,config,model,image,process,tee,qemu,guest,allocation,host,kms,vm}
for f in $(find "$@" -name '*.cpp' | sort); do ctags --fields=+ne --c++-kinds=f -o - "$f"; done 2>/dev/null |
  awk -F'\t' '$1 !~ /^__anon/ {
    line = ""; end = ""; scope = "";
    for (i = 3; i <= NF; i++) {
      if ($i ~ /^line:/) line = substr($i, 6);
      if ($i ~ /^end:/) end = substr($i, 5);
      if ($i ~ /^class:/) scope = substr($i, 7) "::";
    }
    if (line != "" && end != "") print end - line + 1, $2 ":" scope $1
  }' | sort -rn
