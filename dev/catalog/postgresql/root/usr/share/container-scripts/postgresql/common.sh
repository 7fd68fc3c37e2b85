# What run-postgresql and check-container share. Sourced.
# shellcheck shell=bash
export PGDATA=/var/lib/pgsql/data/userdata
export POSTGRESQL_MAX_CONNECTIONS=${POSTGRESQL_MAX_CONNECTIONS:-100}
export POSTGRESQL_MAX_PREPARED_TRANSACTIONS=${POSTGRESQL_MAX_PREPARED_TRANSACTIONS:-0}
export POSTGRESQL_SHARED_BUFFERS=${POSTGRESQL_SHARED_BUFFERS:-32MB}
export PG_SOCKET_DIR=/var/run/postgresql
psql_identifier_regex='^[a-zA-Z_][a-zA-Z0-9_]*$'
psql_password_regex='^[a-zA-Z0-9_~!@#$%^&*()-=<>,.?;:|]+$'

# The message sclorg's image gives when its variables are missing or invalid, then exit 1.
usage() {
  [ $# -eq 1 ] && echo "error: $1" >&2
  cat >&2 <<USAGE
You must either specify the following environment variables:
  POSTGRESQL_USER (regex: '$psql_identifier_regex')
  POSTGRESQL_PASSWORD (regex: '$psql_password_regex')
  POSTGRESQL_DATABASE (regex: '$psql_identifier_regex')
Or the following environment variable:
  POSTGRESQL_ADMIN_PASSWORD (regex: '$psql_password_regex')
Or both.
Optional settings:
  POSTGRESQL_MAX_CONNECTIONS (default: 100)
  POSTGRESQL_MAX_PREPARED_TRANSACTIONS (default: 0)
  POSTGRESQL_SHARED_BUFFERS (default: 32MB)

For more information, see https://github.com/sclorg/postgresql-container
USAGE
  exit 1
}

check_env_vars() {
  if [ -n "${POSTGRESQL_USER:-}${POSTGRESQL_PASSWORD:-}${POSTGRESQL_DATABASE:-}" ]; then
    if [ -z "${POSTGRESQL_USER:-}" ] || [ -z "${POSTGRESQL_PASSWORD:-}" ] || [ -z "${POSTGRESQL_DATABASE:-}" ]; then
      usage "POSTGRESQL_USER, POSTGRESQL_PASSWORD and POSTGRESQL_DATABASE go together"
    fi
    [[ "$POSTGRESQL_USER" =~ $psql_identifier_regex ]] || usage "invalid POSTGRESQL_USER"
    [[ "$POSTGRESQL_PASSWORD" =~ $psql_password_regex ]] || usage "invalid POSTGRESQL_PASSWORD"
    [[ "$POSTGRESQL_DATABASE" =~ $psql_identifier_regex ]] || usage "invalid POSTGRESQL_DATABASE"
    [ ${#POSTGRESQL_USER} -le 63 ] || usage "PostgreSQL username too long (maximum 63 characters)"
    [ ${#POSTGRESQL_DATABASE} -le 63 ] || usage "Database name too long (maximum 63 characters)"
    [ "$POSTGRESQL_USER" != postgres ] || usage "POSTGRESQL_USER cannot be 'postgres'"
  elif [ -z "${POSTGRESQL_ADMIN_PASSWORD:-}" ]; then
    usage
  fi
  if [ -n "${POSTGRESQL_ADMIN_PASSWORD:-}" ]; then
    [[ "$POSTGRESQL_ADMIN_PASSWORD" =~ $psql_password_regex ]] || usage "invalid POSTGRESQL_ADMIN_PASSWORD"
  fi
}
