#!/usr/bin/env bash
# Lints every workspace package as it would be published (run after `npm run build`):
# publint checks package.json against the packed files; attw checks that TypeScript resolves
# the types of every export under node16 (ESM) and bundler resolution. Packages are ESM-only
# (Node ≥ 20.19 can `require()` them), so attw's esm-only profile.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in packages/*/; do
  dir=${dir%/}
  npx --no-install publint --strict "$dir"
  if node -e 'process.exit(require(process.argv[1]).exports ? 0 : 1)' "./$dir/package.json"; then
    npx --no-install attw --pack "$dir" --profile esm-only --format ascii
  fi
done
