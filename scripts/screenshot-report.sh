#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium and saves a full-page screenshot, to check
# the report as a person sees it (plots present, labels readable).
#
#   scripts/screenshot-report.sh RUN_DIR [OUT.png] [WIDTHxHEIGHT]
#
# Needs Debian's chromium (`apt-get install --no-install-recommends chromium`).
set -euo pipefail
run_dir=${1:?usage: scripts/screenshot-report.sh RUN_DIR [OUT.png] [WIDTHxHEIGHT]}
out=${2:-$run_dir/report.png}
size=${3:-1400x2400}
page=$run_dir/report.html
[ -f "$page" ] || page=$run_dir   # a compare.html given directly
[ -f "$page" ] || { echo "error: no report.html in $run_dir (write one with: cargo xtask report $run_dir)" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "error: chromium not found; install it with: apt-get install --no-install-recommends chromium" >&2; exit 2; }
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="${size/x/,}" --screenshot="$(realpath -m "$out")" \
  "file://$(realpath "$page")" 2>/dev/null
echo "$out"
