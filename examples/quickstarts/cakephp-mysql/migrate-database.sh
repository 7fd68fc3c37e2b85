#!/bin/bash
# The cakephp-mysql templates' init container runs this in the built image before the app starts:
# it waits for the database (up to 60 s) and makes the page_views table.
set -e
for _ in $(seq 1 60); do
  if php migrate.php; then
    exit 0
  fi
  sleep 1
done
echo "the database did not answer within 60 s" >&2
exit 1
