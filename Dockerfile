# The operator image: the `hatchet-operator` controller.
# Build from the repository root:  docker build -t hatchet-operator .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY contract contract
COPY proto proto
COPY rest rest
COPY cli cli
COPY worker-image worker-image
COPY operator operator
COPY tests/e2e tests/e2e
RUN cargo build --release --locked -p hatchet-operator --bin hatchet-operator \
 && cp target/release/hatchet-operator /hatchet-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /hatchet-operator /usr/local/bin/hatchet-operator
# Numeric, so the restricted Pod Security profile (runAsNonRoot) can verify it.
USER 65532:65532
# /healthz, /readyz, /metrics.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/hatchet-operator"]
