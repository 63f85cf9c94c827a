# The `streamflow` binary in a small image: built in a Rust image, run in Debian slim.
#   docker build -t streamflow .
#   docker run --rm streamflow --help
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p streamflow-runner

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/streamflow /usr/local/bin/streamflow
USER nobody
EXPOSE 8000
ENTRYPOINT ["streamflow"]
CMD ["run", "--http-addr", "0.0.0.0:8000"]
