# What run-mysqld needs: settings, the variables' checks and sclorg's usage message. Sourced.
# shellcheck shell=bash
export MYSQL_DATADIR=/var/lib/mysql/data
export MYSQL_LOWER_CASE_TABLE_NAMES=${MYSQL_LOWER_CASE_TABLE_NAMES:-0}
export MYSQL_MAX_CONNECTIONS=${MYSQL_MAX_CONNECTIONS:-151}
export MYSQL_FT_MIN_WORD_LEN=${MYSQL_FT_MIN_WORD_LEN:-4}
export MYSQL_FT_MAX_WORD_LEN=${MYSQL_FT_MAX_WORD_LEN:-20}
export MYSQL_AIO=${MYSQL_AIO:-1}
export MYSQL_MAX_ALLOWED_PACKET=${MYSQL_MAX_ALLOWED_PACKET:-200M}
export MYSQL_TABLE_OPEN_CACHE=${MYSQL_TABLE_OPEN_CACHE:-400}
export MYSQL_SORT_BUFFER_SIZE=${MYSQL_SORT_BUFFER_SIZE:-256K}
export MYSQL_INNODB_BUFFER_POOL_SIZE=${MYSQL_INNODB_BUFFER_POOL_SIZE:-128M}
mysql_identifier_regex='^[a-zA-Z0-9_]+$'
mysql_password_regex='^[a-zA-Z0-9_~!@#$%^&*()-=<>,.?;:|]+$'

# The message sclorg's image gives when its variables are missing or invalid, then exit 1.
usage() {
  [ $# -eq 1 ] && echo "error: $1" >&2
  cat >&2 <<USAGE
You must either specify the following environment variables:
  MYSQL_USER (regex: '$mysql_identifier_regex')
  MYSQL_PASSWORD (regex: '$mysql_password_regex')
  MYSQL_DATABASE (regex: '$mysql_identifier_regex')
Or the following environment variable:
  MYSQL_ROOT_PASSWORD (regex: '$mysql_password_regex')
Or both.
Optional Settings:
  MYSQL_LOWER_CASE_TABLE_NAMES (default: 0)
  MYSQL_MAX_CONNECTIONS (default: 151)
  MYSQL_FT_MIN_WORD_LEN (default: 4)
  MYSQL_FT_MAX_WORD_LEN (default: 20)
  MYSQL_AIO (default: 1)
  MYSQL_MAX_ALLOWED_PACKET (default: 200M)
  MYSQL_TABLE_OPEN_CACHE (default: 400)
  MYSQL_SORT_BUFFER_SIZE (default: 256K)
  MYSQL_INNODB_BUFFER_POOL_SIZE (default: 128M)
  MYSQL_DEFAULT_AUTHENTICATION_PLUGIN (default: mysql_native_password)

For more information, see https://github.com/sclorg/mariadb-container
USAGE
  exit 1
}

check_env_vars() {
  if [ -n "${MYSQL_USER:-}${MYSQL_PASSWORD:-}${MYSQL_DATABASE:-}" ]; then
    if [ -z "${MYSQL_USER:-}" ] || [ -z "${MYSQL_PASSWORD:-}" ] || [ -z "${MYSQL_DATABASE:-}" ]; then
      usage "MYSQL_USER, MYSQL_PASSWORD and MYSQL_DATABASE go together"
    fi
    [[ "$MYSQL_USER" =~ $mysql_identifier_regex ]] || usage "Invalid MySQL username"
    [[ "$MYSQL_PASSWORD" =~ $mysql_password_regex ]] || usage "Invalid password"
    [[ "$MYSQL_DATABASE" =~ $mysql_identifier_regex ]] || usage "Invalid database name"
    [ ${#MYSQL_USER} -le 32 ] || usage "MySQL username too long (maximum 32 characters)"
    [ ${#MYSQL_DATABASE} -le 64 ] || usage "Database name too long (maximum 64 characters)"
    [ "$MYSQL_USER" != root ] || usage "MYSQL_USER cannot be 'root': set MYSQL_ROOT_PASSWORD instead"
  elif [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
    usage
  fi
  if [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
    [[ "$MYSQL_ROOT_PASSWORD" =~ $mysql_password_regex ]] || usage "Invalid root password"
  fi
}

# The server's options from the environment.
server_options() {
  local aio=1
  [ "$MYSQL_AIO" = 1 ] || aio=0
  printf '%s\n' \
    "--lower-case-table-names=$MYSQL_LOWER_CASE_TABLE_NAMES" \
    "--max-connections=$MYSQL_MAX_CONNECTIONS" \
    "--ft-min-word-len=$MYSQL_FT_MIN_WORD_LEN" \
    "--ft-max-word-len=$MYSQL_FT_MAX_WORD_LEN" \
    "--innodb-use-native-aio=$aio" \
    "--max-allowed-packet=$MYSQL_MAX_ALLOWED_PACKET" \
    "--table-open-cache=$MYSQL_TABLE_OPEN_CACHE" \
    "--sort-buffer-size=$MYSQL_SORT_BUFFER_SIZE" \
    "--innodb-buffer-pool-size=$MYSQL_INNODB_BUFFER_POOL_SIZE"
}
