#!/usr/bin/env bash
# A newcomer's first hour, scripted (issue 11): a fresh clone in a temp dir, then README.md's path
# as a new user takes it, with the machine's own node/npm on the PATH:
#   1. `npm install` (Set up): passes, no unknown npm config, package-lock.json unchanged,
#      EBADENGINE warnings only for the packages known to need Node 22 (counted and listed);
#   2. `npm start` (See it work): the demo syncs and merges;
#   3. every example of the Examples table, with the command the table gives;
#   4. in the clone, with vitest: the README's every shell block (test/readme-blocks.test.ts:
#      the two-terminal CLI session, relays, metrics, the browser example server), the quick start
#      with plain node in the repository (test/examples.test.ts), and "Use it in your app" — the
#      tarballs installed in a fresh project outside the clone, the quick start run there against
#      a relay and a second replica, the bundle for a page (test/packaging.test.ts).
# Not in CI (it installs a whole clone and compiles better-sqlite3 twice: ~6-10 min on 2 cores);
# CI runs step 4's tests on its own clean clone, and .ci/run does step 1's checks.
#
# Usage: scripts/newcomer.sh [REPOSITORY [REF]]   (default: this repository, its HEAD). Needs root
# for step 4 (network namespaces), as the NAT tests do. Leaves nothing behind.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
REPO=${1:-$HERE}
REF=${2:-$(git -C "$HERE" rev-parse HEAD)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rhizome-newcomer-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
fail() { echo "NEWCOMER FAIL: $*" >&2; exit 1; }
START=$(date +%s)

step "git clone $REPO ($REF)"
git clone --quiet "$REPO" "$WORK/rhizome"
cd "$WORK/rhizome"
git checkout --quiet "$REF"
echo "node $(node --version), npm $(npm --version)"

step "npm install"
npm install 2>&1 | tee "$WORK/install.log"
if grep -E 'Unknown (env|cli|project|user|builtin) config' "$WORK/install.log"; then fail 'npm install reports an unknown npm config'; fi
git diff --exit-code --stat -- package-lock.json || fail 'npm install changed package-lock.json'
BLOCKS=$(grep -c 'EBADENGINE Unsupported engine' "$WORK/install.log" || true)
echo "EBADENGINE blocks from npm: $BLOCKS"
# postinstall's own engines check names them in one line, or says WARNING when the Node that
# runs the scripts does not meet one either.
if grep '\[rhizome postinstall\] WARNING' "$WORK/install.log"; then fail 'an engines requirement is not met by the Node that runs the scripts'; fi
if [ "$BLOCKS" -gt 0 ]; then grep -q 'npm checked engines against its own Node' "$WORK/install.log" || fail 'EBADENGINE warnings without the one-line explanation'; fi

step "npm start"
npm start 2>&1 | tee "$WORK/start.log"
grep -q 'phone:  {"done":true,"title":"Buy oat milk"}' "$WORK/start.log" || fail 'npm start did not show the merge arriving on the phone'

step "examples (README's Examples table)"
grep -o '`npm exec -- tsx --conditions=rhizome-source examples/[a-z-]*/main.ts`' README.md | tr -d '`' | while read -r cmd; do
  echo "\$ $cmd"
  timeout 180 $cmd > "$WORK/example.log" 2>&1 || { cat "$WORK/example.log"; fail "$cmd"; }
  tail -n 2 "$WORK/example.log"
done

step "README blocks, quick start, Use it in your app (vitest in the clone)"
npm exec -- vitest run test/readme-blocks.test.ts test/examples.test.ts test/packaging.test.ts

step "PASS in $(($(date +%s) - START)) s"
