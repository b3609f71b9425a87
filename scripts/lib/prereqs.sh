# Sourced by scripts/run and scripts/test: installs the system packages geoimport needs when they are
# missing (PostgreSQL server, PostGIS, GDAL), on Debian or Ubuntu.

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
  # test fixtures only: OSM PBF (osmium) and legacy Excel files (Spreadsheet::WriteExcel)
  dpkg -s osmium-tool >/dev/null 2>&1 || missing+=(osmium-tool)
  dpkg -s libspreadsheet-writeexcel-perl >/dev/null 2>&1 || missing+=(libspreadsheet-writeexcel-perl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "geoimport: installing ${missing[*]}" >&2
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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
