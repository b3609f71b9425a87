# Sourced by scripts/run and scripts/test: installs the system packages geoimport needs when they are
# missing (PostgreSQL server, PostGIS, GDAL), on Debian or Ubuntu, and builds the web page the binary
# embeds (scripts/lib/web.sh: every script that builds geoimport needs it first). The connector tests also need a
# MariaDB (or MySQL) server: ensure_local_mariadb starts or installs one.

source "$(dirname "${BASH_SOURCE[0]}")/web.sh"

need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_major() {
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
  echo "${v:-15}"
}

install_prerequisites() {
  local missing=() major
  command -v cargo >/dev/null || { echo "geoimport: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }
  major=$(pg_major)
  dpkg -s "postgresql-$major" >/dev/null 2>&1 || missing+=("postgresql-$major")
  dpkg -s "postgresql-$major-postgis-3" >/dev/null 2>&1 || missing+=("postgresql-$major-postgis-3")
  dpkg -s libgdal-dev >/dev/null 2>&1 || missing+=(libgdal-dev)
  dpkg -s gdal-bin >/dev/null 2>&1 || missing+=(gdal-bin)
  dpkg -s pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "geoimport: installing ${missing[*]}" >&2
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  build_web
}

# What the tests need beyond the server's own prerequisites: an FTP server (pyftpdlib), fixture writers (osmium for OSM PBF,
# Spreadsheet::WriteExcel for legacy Excel files, openpyxl and odfpy for XLSX and ODS), openssl for the TLS certificate of the tests' own
# PostgreSQL cluster, MariaDB's server binaries for the tests' own servers in other time zones, an S3-compatible server, a tus client, and
# Debian's Chromium, which tests/it/web.rs drives headless with playwright-core (installed by build_web from web/package-lock.json;
# playwright-core downloads no browser of its own).
install_test_prerequisites() {
  install_packages osmium-tool libspreadsheet-writeexcel-perl openssl mariadb-server mariadb-client chromium
  command -v python3 >/dev/null || install_packages python3
  python3 -c 'import ensurepip, venv' 2>/dev/null || install_packages python3-venv
  # CARTO's own Python SDK for tests/it/carto_sdk.rs; the spreadsheet writers of tests/it/spreadsheets.rs
  # (openpyxl for xlsx, odfpy for ods). Each in a venv of the checkout's: the python3 on PATH may not see
  # Debian's Python packages.
  install_python_venv target/carto-sdk-venv carto carto==1.11.3 six
  install_python_venv target/sheet-writers-venv "openpyxl, odf" openpyxl==3.1.5 odfpy==1.4.1
  # A real FTP(S) server for tests/it/ftp.rs.
  install_python_venv target/ftp-venv "pyftpdlib, OpenSSL" pyftpdlib==2.2.0 pyopenssl==26.4.0
  # An S3-compatible server (moto's) for the staging store's tests, tests/it/object_staging.rs.
  install_python_venv target/moto-venv "moto.server, flask" "moto[server]==5.2.5"
  # The tus project's Python client, a real resumable-upload client for tests/it/tus.rs.
  install_python_venv target/tus-client-venv tusclient tuspy==1.1.0
}

# install_python_venv <venv> <modules to import> <pip requirements...>: makes the venv unless it imports them.
install_python_venv() {
  local venv=$1 modules=$2
  shift 2
  if ! "$venv/bin/python" -c "import $modules" 2>/dev/null; then
    echo "geoimport: installing $* in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@"
  fi
}

# Starts the machine's PostgreSQL cluster if it is installed but not running (tests use it).
ensure_local_postgres() {
  local host=${1:-127.0.0.1} port=${2:-5432} major
  if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then return 0; fi
  major=$(pg_major)
  if command -v pg_ctlcluster >/dev/null && [ -d "/etc/postgresql/$major/main" ]; then
    echo "geoimport: starting PostgreSQL $major" >&2
    need_root pg_ctlcluster --skip-systemctl-redirect "$major" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h "$host" -p "$port" 2>/dev/null && return 0
    sleep 1
  done
  echo "geoimport: no PostgreSQL answers on $host:$port; set TEST_DATABASE_URL to a server with PostGIS" >&2
  exit 1
}

# Installs the named Debian packages that are missing.
install_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "geoimport: installing ${missing[*]}" >&2
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

mariadb_answers() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Makes sure a MariaDB server answers on 127.0.0.1:3306 for the connector tests (TEST_MYSQL_URL, default
# root without password): started if installed but not running, installed first if absent; a fresh
# install lets root in over its socket only, so root is opened on 127.0.0.1 without a password (a test
# machine's setup, nothing else listens there).
ensure_local_mariadb() {
  local host=127.0.0.1 port=3306
  if ! mariadb_answers "$host" "$port"; then
    [ -x /usr/sbin/mariadbd ] || install_packages mariadb-server mariadb-client
    echo "geoimport: starting MariaDB" >&2
    need_root mkdir -p /run/mysqld
    need_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    need_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 1 30); do
      mariadb_answers "$host" "$port" && break
      sleep 1
    done
    if ! mariadb_answers "$host" "$port"; then
      echo "geoimport: no MariaDB answers on $host:$port; set TEST_MYSQL_URL to a MySQL or MariaDB server" >&2
      exit 1
    fi
  fi
  if ! mariadb --no-defaults -h "$host" -P "$port" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    need_root mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; \
      GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION" || true
  fi
}

# The data directory scripts/run picks when neither DATABASE_URL nor GEOIMPORT_DATA_DIR is set: as root,
# the embedded PostgreSQL runs as the postgres user, which must be able to reach it, so a checkout that
# user cannot enter gets /var/lib/geoimport. Prints nothing when the default (geoimport-data) will do.
default_data_dir() {
  if [ -z "${DATABASE_URL:-}" ] && [ -z "${GEOIMPORT_DATA_DIR:-}" ] && [ "$(id -u)" -eq 0 ] &&
    ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
    echo /var/lib/geoimport
  fi
}
