# syntax=docker/dockerfile:1
# Heliograph's image: heliograph-api and heliograph-worker, built in release
# mode from the locked dependency tree, on a slim Debian with nothing but CA
# certificates, run as an unprivileged user. One image for both processes:
#
#   docker build -t heliograph:1.0.0 .
#   docker run heliograph:1.0.0                       # the api (CMD)
#   docker run heliograph:1.0.0 heliograph-api migrate
#   docker run heliograph:1.0.0 heliograph-worker
#
# What goes in and why: docs/deploy.md ("The image"). deploy/check-deploy-files
# lints this file (hadolint) and checks what docs/deploy.md promises of it.

# The build and the runtime stage share one Debian release, so the binaries
# find the glibc they were linked against.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Only what the workspace build reads: .dockerignore keeps target/, .local/,
# .git and the docs out. Migrations, templates and the default plans are
# compiled into the binaries (sqlx::migrate!, askama, include_str!).
COPY . .
# The registry and target caches survive between builds on one builder
# (BuildKit); the binaries are copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin heliograph-api --bin heliograph-worker \
    && mkdir -p /out \
    && cp target/release/heliograph-api target/release/heliograph-worker /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: SMTP over TLS, webhooks, Stripe and a managed database's
# TLS are verified against the system's roots. Nothing else is installed.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 heliograph \
    && useradd --system --uid 10001 --gid heliograph --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin heliograph
COPY --from=build /out/heliograph-api /out/heliograph-worker /usr/local/bin/
# Inside a container the loopback defaults would answer no one: the public
# listener, the operators' listener (/metrics, /internal/tls/ask: keep it off
# the internet) and the worker's /metrics listen on every interface.
ENV BIND_ADDR=0.0.0.0:8080 \
    ADMIN_ADDR=0.0.0.0:9465 \
    METRICS_ADDR=0.0.0.0:9464
EXPOSE 8080 9465 9464
USER 10001:10001
CMD ["heliograph-api"]
