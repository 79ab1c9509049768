#!/usr/bin/env bash
# Fails when the committed generated code differs from what `buf generate` makes
# of the proto files, and when the contract breaks the previous commit's.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pnpm exec buf generate --output "$tmp"
if ! diff -r "$tmp/packages/grpcplugin/src/gen" packages/grpcplugin/src/gen; then
  echo "generated code is stale: run 'pnpm generate' and commit packages/grpcplugin/src/gen" >&2
  exit 1
fi
echo "generated code is fresh"
# buf breaking against the previous commit, once it has the contract.
if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto/hollowtrees/plugin/v1/plugin.proto 2>/dev/null; then
  pnpm exec buf breaking proto --against '.git#ref=HEAD~1,subdir=proto'
  echo "buf breaking: no breaking change against HEAD~1"
fi
