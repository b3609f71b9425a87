# Sourced by scripts/lib/prereqs.sh (whose install_prerequisites runs build_web for scripts/run,
# scripts/test, .ci/run and the bench scripts) and used by scripts/build-web: builds the web page (web/dist)
# that build.rs embeds in the binary. npm installs exactly what web/package-lock.json names (from npm's
# cache when it has them: --prefer-offline), then esbuild bundles it. Node.js is needed here only, never
# when the server runs.

build_web() {
  if ! command -v npm >/dev/null; then
    # Debian's nodejs (18 on bookworm) is new enough for esbuild and web/build.mjs.
    install_packages nodejs npm
  fi
  (
    cd web
    # npm ci empties node_modules first: skipped while the lockfile is the one last installed.
    if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
      echo "geoimport: installing the web page's npm packages (web/package-lock.json)" >&2
      npm ci --prefer-offline --no-audit --no-fund --loglevel=error
      cp package-lock.json node_modules/.installed-lock
    fi
    npm run --silent build >/dev/null
  ) || { echo "geoimport: building the web page (web/) failed" >&2; exit 1; }
}
