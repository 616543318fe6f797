# syntax=docker/dockerfile:1
# The Ferry container image: a multi-stage build.
#
#   docker build -t ferry .
#   docker run --rm -p 127.0.0.1:8080:8080 -v ferry-data:/var/lib/ferry ferry            # ferry serve
#   docker run --rm -v "$PWD/job.json:/job.json:ro" ferry run /job.json --progress plain  # any subcommand
#
# Stage 1 compiles the `ferry` binary; a dependency layer (only the Cargo manifests and the lock
# file, with empty crate sources) is cached, so editing Ferry's code does not rebuild the
# dependencies. Stage 2 is debian:bookworm-slim with ca-certificates and the binary, run as an
# unprivileged user (uid 10001) that owns the data directory /var/lib/ferry.
#
# No HEALTHCHECK here: the same image also runs one-shot commands (`ferry run`, `ferry verify`,
# `ferry loadgen`) that serve nothing, and the listening address is chosen at run time. The
# `ferry serve` service of docker-compose.yml declares its own health check against /healthz.
#
# Nothing secret is copied into the image: API keys and database passwords come from the
# environment, the data directory volume, or the job files given at run time.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# --- dependency layer: manifests + lock file, every crate reduced to an empty stub -------------
# scripts/check-compose.py fails when a crate of crates/ is missing from this list.
COPY Cargo.toml Cargo.lock ./
COPY crates/ferry-api/Cargo.toml crates/ferry-api/
COPY crates/ferry-check/Cargo.toml crates/ferry-check/
COPY crates/ferry-cli/Cargo.toml crates/ferry-cli/
COPY crates/ferry-core/Cargo.toml crates/ferry-core/
COPY crates/ferry-job/Cargo.toml crates/ferry-job/
COPY crates/ferry-load/Cargo.toml crates/ferry-load/
COPY crates/ferry-replay/Cargo.toml crates/ferry-replay/
COPY crates/ferry-schema/Cargo.toml crates/ferry-schema/
COPY crates/ferry-service/Cargo.toml crates/ferry-service/
COPY crates/ferry-testkit/Cargo.toml crates/ferry-testkit/
COPY crates/ferry-verify/Cargo.toml crates/ferry-verify/
RUN set -eu; \
    for dir in crates/*/; do \
      mkdir -p "${dir}src"; \
      if grep -q '^\[\[bin\]\]' "${dir}Cargo.toml"; then echo 'fn main() {}' > "${dir}src/main.rs"; \
      else : > "${dir}src/lib.rs"; fi; \
    done; \
    cargo build --release --locked -p ferry-cli

# --- the real sources -----------------------------------------------------------------------
COPY crates crates
# COPY keeps the files' own modification times, which may be older than the stubs above:
# touch them so that cargo rebuilds Ferry's crates (and only them).
RUN set -eu; \
    find crates -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p ferry-cli; \
    install -m 0755 target/release/ferry /usr/local/bin/ferry; \
    /usr/local/bin/ferry --version

FROM debian:bookworm-slim AS runtime
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 ferry; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ferry --shell /usr/sbin/nologin ferry; \
    install -d -o 10001 -g 10001 -m 0700 /var/lib/ferry
COPY --from=build /usr/local/bin/ferry /usr/local/bin/ferry
USER 10001:10001
WORKDIR /var/lib/ferry
# A new named volume mounted here starts with this directory's owner (ferry) and mode.
VOLUME ["/var/lib/ferry"]
EXPOSE 8080
ENTRYPOINT ["ferry"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/ferry"]
