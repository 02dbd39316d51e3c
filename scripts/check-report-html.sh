#!/usr/bin/env bash
# Checks a report.html in a real headless browser (Debian's `chromium`), with the network
# turned off: the page must load without console errors or failed requests, and clicking a
# numeric column header must sort its table (ascending, then descending). Takes a screenshot.
#
#   scripts/check-report-html.sh runs/study/report.html [screenshot.png]
#
# Exit 0: fine; 1: the page has a problem; 2: no browser or bad usage.
# Not part of `cargo test`: CI machines need not have a browser (`apt-get install -y chromium`).
set -euo pipefail

if [[ $# -lt 1 || ! -f $1 ]]; then
  echo "usage: $0 REPORT.html [SCREENSHOT.png]" >&2
  exit 2
fi
html=$(realpath "$1")
shot=${2:-${html%.html}.png}
height=${HEIGHT:-3000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $browser ]]; then
  echo "no headless browser found: apt-get install -y chromium" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(
  --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --host-resolver-rules="MAP * ~NOTFOUND"
  --user-data-dir="$tmp/profile" --enable-logging=stderr --v=0
)

# 1. The page as a reader sees it.
"$browser" "${flags[@]}" --window-size="1200,$height" --screenshot="$shot" "file://$html" >"$tmp/shot.out" 2>"$tmp/shot.log" || true
if [[ ! -s $shot ]]; then
  echo "error: no screenshot written; browser log:" >&2
  tail -20 "$tmp/shot.log" >&2
  exit 1
fi

# 2. The same page with a probe appended that clicks every numeric header twice and checks
#    the order of the column's sort keys; it records its verdict on <body>.
cat >"$tmp/probe.js" <<'JS'
<script>
(function () {
  var problems = [], checked = 0;
  document.querySelectorAll('table.sortable').forEach(function (t, ti) {
    var heads = t.tHead.rows[0].cells;
    for (var c = 0; c < heads.length; c++) {
      if (!heads[c].classList.contains('num')) { continue; }
      [1, -1].forEach(function (dir) {
        heads[c].click();
        var xs = Array.prototype.map.call(t.tBodies[0].rows, function (r) {
          return parseFloat(r.cells[c].getAttribute('data-sort'));
        }).filter(function (x) { return !isNaN(x); });
        for (var i = 1; i < xs.length; i++) {
          if ((xs[i] - xs[i - 1]) * dir < 0) {
            problems.push('table ' + ti + ' column "' + heads[c].textContent + '" not sorted ' + (dir > 0 ? 'up' : 'down'));
            break;
          }
        }
        checked++;
      });
    }
  });
  if (checked === 0) { problems.push('no sortable numeric column found'); }
  document.body.setAttribute('data-sort-check', problems.length ? 'failed' : 'ok');
  if (problems.length) { console.error('sort check: ' + problems.join('; ')); }
})();
</script>
JS
python3 - "$html" "$tmp/probe.js" "$tmp/probe.html" <<'PY'
import sys
page, probe, out = (open(sys.argv[1], encoding="utf-8").read(), open(sys.argv[2]).read(), sys.argv[3])
i = page.rfind("</body>")
open(out, "w", encoding="utf-8").write(page[:i] + probe + page[i:] if i >= 0 else page + probe)
PY
"$browser" "${flags[@]}" --dump-dom "file://$tmp/probe.html" >"$tmp/dom.html" 2>"$tmp/dom.log" || true

status=0
# References to anything outside the file (the report must stand alone).
if ! python3 - "$html" <<'PY'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
bad = re.findall(r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//[^"'\s>]*|url\(\s*["']?\s*(?:[a-z]+:)?//[^)]*\)|@import[^;]*)""", page, re.I)
for b in bad:
    print("error: external reference: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
then
  status=1
fi
# Console messages (errors, uncaught exceptions) and failed loads (the network is off).
if grep -hE 'CONSOLE|Uncaught|ERR_NAME_NOT_RESOLVED|Failed to load resource' "$tmp/shot.log" "$tmp/dom.log" >"$tmp/errors"; then
  echo "error: the page logged to the console or tried the network:" >&2
  cat "$tmp/errors" >&2
  status=1
fi
if ! grep -q 'data-sort-check="ok"' "$tmp/dom.html"; then
  echo "error: clicking column headers did not sort the tables" >&2
  grep -o 'data-sort-check="[^"]*"' "$tmp/dom.html" >&2 || echo "(the probe did not run)" >&2
  status=1
fi
if [[ $status -eq 0 ]]; then
  echo "ok: $(basename "$html") loads without console errors or network, tables sort; screenshot $shot"
fi
exit $status
