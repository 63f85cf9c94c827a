# syntax=docker/dockerfile:1
# The `streamflow` binary in a small image: built in a Rust image, run in Debian slim.
#   docker build -t streamflow --build-arg STREAMFLOW_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --rm streamflow --help
# BuildKit's cache mounts keep the registry, the git checkouts and target/ between builds:
# a change to the sources rebuilds the workspace's crates only, not its dependencies.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# `.git` is not sent to the build (.dockerignore): the commit `--version` shows comes from here.
ARG STREAMFLOW_COMMIT=unknown
ENV STREAMFLOW_COMMIT=${STREAMFLOW_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p streamflow-runner \
    && cp target/release/streamflow /usr/local/bin/streamflow

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/streamflow /usr/local/bin/streamflow
USER nobody
EXPOSE 8000
# Liveness only: a database outage must not make the container unhealthy (the pipeline retries
# and catches up); commands without `--http-addr` (generate) disable it in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=6 \
    CMD curl -fsS http://127.0.0.1:8000/health/live || exit 1
ENTRYPOINT ["streamflow"]
CMD ["run", "--http-addr", "0.0.0.0:8000"]
