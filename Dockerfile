# Multi-stage build: compile in the Rust image, run in a slim Debian with only what geoimport needs at run
# time: GDAL's library (the vector formats), and PostgreSQL with PostGIS so that `geoimport serve` without
# DATABASE_URL can run its embedded database (with DATABASE_URL pointing elsewhere they are unused).
# The web page is built first (npm from web/package-lock.json, then esbuild); build.rs embeds web/dist.
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/build.mjs web/index.html ./
COPY web/src src
RUN npm run build

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libgdal-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY --from=web /src/web/dist web/dist
COPY src src
COPY migrations migrations
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgdal32 postgresql-15 postgresql-15-postgis-3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/geoimport geoimport
COPY --from=build /src/target/release/geoimport /src/target/release/geoimport-gdal-read /usr/local/bin/
USER geoimport
ENV GEOIMPORT_DATA_DIR=/var/lib/geoimport/data \
    GEOIMPORT_BIND=0.0.0.0:8080
VOLUME /var/lib/geoimport
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fs http://127.0.0.1:8080/livez || exit 1
ENTRYPOINT ["geoimport"]
CMD ["serve"]
