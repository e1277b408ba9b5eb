#!/usr/bin/env bash
# Runs the SQL migrations under migrations/ against DATABASE_URL (schema ops).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/operator_mgmt}
exec npx --no-install node-pg-migrate "${1:-up}" \
  --migrations-dir migrations --schema ops --create-schema \
  --migrations-schema ops --migrations-table pgmigrations --verbose false
