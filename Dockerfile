# The two service images, from one file:
#
#   docker build --target web-frontend  -t authbridge/web-frontend .
#   docker build --target socket-server -t authbridge/socket-server .
#
# Those targets build from source: the page's Socket.IO client with npm (pinned
# by crates/web-frontend/client/package-lock.json), the binaries with Cargo in
# the official Rust image (the toolchain the project is tested with),
# dependencies in a cached layer of their own. They run on an empty image
# holding only the C runtime of Debian slim (the glibc the builder links
# against), as an unprivileged user, with a HEALTHCHECK on /healthz.
#
# The *-prebuilt targets package binaries already built on the host instead
# (context: a folder holding prebuilt/web-frontend, prebuilt/socket-server and
# config/); scripts/docker-test uses them where no image registry is reachable.
# They come first: the classic builder processes every stage before its target.

ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- runtime base -------------------------------------------------------------
# The binaries need only glibc (libc, libm), libgcc_s and the dynamic loader:
# copied out of Debian slim onto an empty image, they make a ~4 MB base.
FROM ${RUNTIME_IMAGE} AS runtime-libs
RUN set -eu; \
    for file in /lib/*-linux-gnu/libc.so.6 /lib/*-linux-gnu/libm.so.6 /lib/*-linux-gnu/libgcc_s.so.1 \
                /lib/*-linux-gnu/ld-linux*.so.* /lib64/ld-linux*.so.* /lib/ld-linux*.so.*; do \
      [ -e "$file" ] || continue; \
      mkdir -p "/runtime$(dirname "$file")"; \
      cp -L "$file" "/runtime$file"; \
    done; \
    mkdir -p /runtime/etc /runtime/tmp /keys; \
    chmod 1777 /runtime/tmp; \
    echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /runtime/etc/passwd; \
    echo 'nonroot:x:65532:' > /runtime/etc/group

FROM scratch AS runtime
COPY --from=runtime-libs /runtime/ /
WORKDIR /app
# config/default.toml: the layer under APP_CONFIG and the environment (it holds
# the article's demo user, which APP_ENV=production refuses).
COPY config/ /app/config/
ENV APP_WEB__ADDR=0.0.0.0:8080 \
    APP_SOCKET__ADDR=0.0.0.0:3000
# No shell and no tools: the binaries answer their own health checks.
USER 65532:65532
STOPSIGNAL SIGTERM

# ---- one base per service: port, health check, entrypoint ---------------------
FROM runtime AS web-frontend-base
# An empty /keys owned by the service's user: a named volume mounted there starts
# as a copy of it, so `generate-keypair --out /keys/...` can write into it
# (docker-compose.asymmetric.yml).
COPY --from=runtime-libs --chown=65532:65532 /keys/ /keys/
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["web-frontend", "healthcheck"]
ENTRYPOINT ["web-frontend"]
CMD ["serve"]

FROM runtime AS socket-server-base
EXPOSE 3000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["socket-server", "healthcheck"]
ENTRYPOINT ["socket-server"]
CMD ["serve"]

# ---- images from host-built binaries (tests) -----------------------------------
FROM web-frontend-base AS web-frontend-prebuilt
COPY prebuilt/web-frontend /usr/local/bin/web-frontend

FROM socket-server-base AS socket-server-prebuilt
COPY prebuilt/socket-server /usr/local/bin/socket-server

# ---- build from source (the default) --------------------------------------------
FROM ${NODE_IMAGE} AS client
WORKDIR /client
COPY crates/web-frontend/client/package.json crates/web-frontend/client/package-lock.json crates/web-frontend/client/build.mjs ./
RUN npm ci --no-audit --no-fund

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, against stub sources: this layer is reused until
# Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
# The patched socketioxide (vendor/README.md) is a dependency, not a stub.
COPY vendor/ vendor/
COPY crates/claims/Cargo.toml crates/claims/
COPY crates/client/Cargo.toml crates/client/
COPY crates/loadgen/Cargo.toml crates/loadgen/
COPY crates/service/Cargo.toml crates/service/
COPY crates/settings/Cargo.toml crates/settings/
COPY crates/socket-server/Cargo.toml crates/socket-server/
COPY crates/testkit/Cargo.toml crates/testkit/
COPY crates/web-frontend/Cargo.toml crates/web-frontend/
RUN for crate in claims client loadgen service settings socket-server testkit web-frontend; do \
      mkdir -p crates/$crate/src && echo '' > crates/$crate/src/lib.rs; \
    done \
 && mkdir -p crates/claims/benches && echo 'fn main() {}' > crates/claims/benches/tokens.rs \
 && mkdir -p src && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > crates/web-frontend/src/main.rs \
 && echo 'fn main() {}' > crates/socket-server/src/main.rs \
 && cargo build --release --locked -p web-frontend -p socket-server \
 && rm -rf src crates/*/src crates/claims/benches target/release/.fingerprint/claims-* target/release/.fingerprint/service-* target/release/.fingerprint/settings-* \
      target/release/.fingerprint/web-frontend-* target/release/.fingerprint/socket-server-*
COPY . .
COPY --from=client /client/dist/ crates/web-frontend/client/dist/
# The real sources must look newer than the stubs' build.
RUN find crates src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p web-frontend -p socket-server

# ---- the images ------------------------------------------------------------------
FROM socket-server-base AS socket-server
COPY --from=build /src/target/release/socket-server /usr/local/bin/socket-server

FROM web-frontend-base AS web-frontend
COPY --from=build /src/target/release/web-frontend /usr/local/bin/web-frontend
