#!/usr/bin/env bash
# Builds every Go plugin under plugins/ to plugins/<name>/<name>.wasm and
# every Go guest of the conformance kit under sdk/tck/ to
# sdk/tck/<name>/<name>.wasm (WASI reactors: GOOS=wasip1 GOARCH=wasm
# -buildmode=c-shared), then runs plugins/raw-wat/build.sh if it exists.
#
#   plugins/build.sh              build what is out of date
#   plugins/build.sh -f           rebuild everything
#   plugins/build.sh jwt-auth     build only the named modules (a plugin
#   plugins/build.sh hostcheck    under plugins/ or a guest under sdk/tck/)
#
# A module is out of date when any .go file of its folder, of sdk/go or of
# sdk/abi, or go.mod/go.sum, is newer than its .wasm. Each module built is
# checked with wasm-objdump (wabt), when installed: it must export memory,
# wasmgate_abi_v1, _initialize and on_init/on_request, and import only from
# "wasmgate" and "wasi_snapshot_preview1". GO (default: go) and
# WASM_LDFLAGS (default: none, which keeps function names for trap stack
# traces; "-s -w" makes smaller modules) are honoured.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
GO=${GO:-go}
force=0
if [[ ${1:-} == -f ]]; then force=1; shift; fi

# The folders that hold Go modules: the example plugins, then the kit's guests.
parents=(plugins sdk/tck)

dirs=()
if (($# > 0)); then
	for name in "$@"; do
		found=()
		for parent in "${parents[@]}"; do
			[[ -f $parent/$name/main.go ]] && found+=("$parent/$name")
		done
		case ${#found[@]} in
		1) dirs+=("${found[0]}") ;;
		0)
			echo "build.sh: no Go module named $name (looked for plugins/$name/main.go and sdk/tck/$name/main.go)" >&2
			exit 1
			;;
		*)
			echo "build.sh: $name is ambiguous: ${found[*]}" >&2
			exit 1
			;;
		esac
	done
else
	for parent in "${parents[@]}"; do
		for main in "$parent"/*/main.go; do
			[[ -f $main ]] && dirs+=("$(dirname "$main")")
		done
	done
fi

# stale OUT DIR: true when OUT is missing or older than any input.
stale() {
	local out=$1 dir=$2
	[[ $force == 1 || ! -f $out ]] && return 0
	[[ -n $(find "$dir" sdk/go sdk/abi go.mod go.sum -newer "$out" \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print -quit) ]]
}

# check WASM: the module shape sdk/ABI.md asks for (section 1).
check() {
	command -v wasm-objdump >/dev/null || return 0
	local wasm=$1 exports imports want bad
	exports=$(wasm-objdump -x -j Export "$wasm" | sed -n 's/.*-> "\(.*\)"$/\1/p')
	for want in memory wasmgate_abi_v1 _initialize on_init on_request; do
		if ! grep -qx "$want" <<<"$exports"; then
			echo "build.sh: $wasm does not export $want" >&2
			return 1
		fi
	done
	imports=$(wasm-objdump -x -j Import "$wasm" | sed -n 's/.*<- \([^.]*\)\..*/\1/p' | sort -u)
	bad=$(grep -vx -e wasmgate -e wasi_snapshot_preview1 <<<"$imports" || true)
	if [[ -n $bad ]]; then
		echo "build.sh: $wasm imports from $bad" >&2
		return 1
	fi
}

built=0
for dir in "${dirs[@]}"; do
	name=$(basename "$dir")
	out=$dir/$name.wasm
	if ! stale "$out" "$dir"; then
		continue
	fi
	start=$(date +%s%N)
	GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath \
		${WASM_LDFLAGS:+-ldflags="$WASM_LDFLAGS"} -o "$out.tmp" "./$dir"
	check "$out.tmp"
	mv "$out.tmp" "$out"
	ms=$((($(date +%s%N) - start) / 1000000))
	printf '%-16s %8d bytes  %5d ms\n' "$name" "$(stat -c %s "$out")" "$ms"
	built=$((built + 1))
done
if ((built == 0)) && (($# == 0)); then
	echo "Go plugins and kit guests up to date"
fi

if (($# == 0)) && [[ -x plugins/raw-wat/build.sh || -f plugins/raw-wat/build.sh ]]; then
	bash plugins/raw-wat/build.sh
fi
if (($# == 0)); then
	GO="$GO" bash plugins/httpwasm/build.sh
fi
