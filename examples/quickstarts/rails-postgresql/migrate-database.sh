#!/bin/bash
# The templates' init container: migrates the database (`rake db:migrate`), waiting for it to
# answer first (it may start at the same time as the application).
set -e
cd "$(dirname "$0")"
for attempt in $(seq 1 30); do
  if bundle exec rake db:migrate; then
    exit 0
  fi
  echo "---> The database is not ready (attempt $attempt of 30): retrying in 2 s ..." >&2
  sleep 2
done
echo "ERROR: the database could not be migrated." >&2
exit 1
