#!/usr/bin/env bash
# Re-vendor the front-end assets in static/vendor/ from the npm registry (no CDN), and
# axe-core, which only the accessibility test uses, in tests/browser/vendor/.
#
#   bash scripts/vendor_assets.sh        (or: make vendor)
#
# Versions and npm integrity hashes are pinned below; to upgrade, change both
# (`npm view bootstrap@X.Y.Z dist.integrity`) and update static/vendor/README.md.
# static/vendor/README.md itself is left alone; everything else in the
# package folders is deleted and copied anew, so the result is exactly what the
# pinned tarballs contain.
set -euo pipefail

BOOTSTRAP_VERSION="5.3.8"
BOOTSTRAP_INTEGRITY="sha512-HP1SZDqaLDPwsNiqRqi5NcP0SSXciX2s9E+RyqJIIqGo+vJeN5AJVM98CXmW/Wux0nQ5L7jeWUdplCEf0Ee+tg=="
ICONS_VERSION="1.13.2"
ICONS_INTEGRITY="sha512-fAU1Ly3dH7hwRg+CB8EZ0Vl0fF80zgXHeUVJyfUOKzoURr+TbwISbCW5tKUoQLERaWYG2emTCybcPbD96hdD1A=="
AXE_VERSION="4.14.1"
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$ROOT/static/vendor"
# Not under static/: collectstatic would ship a test-only tool to every deployment.
TEST_VENDOR="$ROOT/tests/browser/vendor"

for tool in npm tar python3; do
    command -v "$tool" >/dev/null || { echo "vendor_assets: '$tool' is required" >&2; exit 1; }
done

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# fetch NAME VERSION INTEGRITY -> extracts to $TMP/NAME/package
fetch() {
    local name="$1" version="$2" integrity="$3" tarball actual
    tarball="$(cd "$TMP" && npm pack --silent "${name}@${version}" | tail -n 1)"
    actual="sha512-$(python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$TMP/$tarball")"
    if [[ "$actual" != "$integrity" ]]; then
        echo "vendor_assets: integrity mismatch for ${name}@${version}" >&2
        echo "  expected $integrity" >&2
        echo "  got      $actual" >&2
        exit 1
    fi
    mkdir -p "$TMP/$name"
    tar -xzf "$TMP/$tarball" -C "$TMP/$name"
}

fetch bootstrap "$BOOTSTRAP_VERSION" "$BOOTSTRAP_INTEGRITY"
fetch bootstrap-icons "$ICONS_VERSION" "$ICONS_INTEGRITY"
fetch axe-core "$AXE_VERSION" "$AXE_INTEGRITY"

BS="$TMP/bootstrap/package"
BI="$TMP/bootstrap-icons/package"

# --- bootstrap -------------------------------------------------------------
rm -rf "$VENDOR/bootstrap"
mkdir -p "$VENDOR/bootstrap/css" "$VENDOR/bootstrap/js"
cp "$BS/dist/css/bootstrap.min.css" "$BS/dist/css/bootstrap.min.css.map" "$VENDOR/bootstrap/css/"
cp "$BS/dist/js/bootstrap.bundle.min.js" "$BS/dist/js/bootstrap.bundle.min.js.map" "$VENDOR/bootstrap/js/"
cp "$BS/LICENSE" "$VENDOR/bootstrap/LICENSE"

# --- bootstrap-icons -------------------------------------------------------
# The CSS loads url("fonts/bootstrap-icons.woff2?...") relative to itself,
# so fonts/ sits next to the CSS file.
rm -rf "$VENDOR/bootstrap-icons"
mkdir -p "$VENDOR/bootstrap-icons/fonts"
cp "$BI/font/bootstrap-icons.min.css" "$VENDOR/bootstrap-icons/"
cp "$BI/font/fonts/bootstrap-icons.woff" "$BI/font/fonts/bootstrap-icons.woff2" "$VENDOR/bootstrap-icons/fonts/"
cp "$BI/LICENSE" "$VENDOR/bootstrap-icons/LICENSE"

# Sanity: every font the icon CSS references must exist.
grep -o 'url("fonts/[^"?]*' "$VENDOR/bootstrap-icons/bootstrap-icons.min.css" | sed 's/^url("//' |
    while read -r font; do
        [[ -f "$VENDOR/bootstrap-icons/$font" ]] || { echo "vendor_assets: missing $font" >&2; exit 1; }
    done

# --- axe-core (tests only) --------------------------------------------------
# tests/browser/test_accessibility.py evaluates axe.min.js in each page it checks.
AX="$TMP/axe-core/package"
rm -rf "$TEST_VENDOR/axe-core"
mkdir -p "$TEST_VENDOR/axe-core"
cp "$AX/axe.min.js" "$AX/LICENSE" "$AX/LICENSE-3RD-PARTY.txt" "$TEST_VENDOR/axe-core/"

chmod -R u=rwX,go=rX "$VENDOR/bootstrap" "$VENDOR/bootstrap-icons" "$TEST_VENDOR/axe-core"
echo "vendored bootstrap@${BOOTSTRAP_VERSION} and bootstrap-icons@${ICONS_VERSION} into ${VENDOR#"$ROOT"/}"
echo "vendored axe-core@${AXE_VERSION} into ${TEST_VENDOR#"$ROOT"/}"
