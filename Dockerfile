# The roomcast image: one static binary FROM scratch, non-root, with CA
# certificates and nothing else (no shell, no package manager).
#
# This is the recipe the integration tests build and run, so what ships is
# what was tested. Its build context is staged, not the repository:
#
#   task image            # or by hand:
#   task build-static     # CGO_ENABLED=0 go build ... -o bin/roomcast
#   mkdir -p build/image/data
#   cp bin/roomcast build/image/
#   cp /etc/ssl/certs/ca-certificates.crt build/image/
#   docker build -f Dockerfile --build-arg VERSION=$(git describe --tags --always) \
#       --build-arg REVISION=$(git rev-parse HEAD) -t roomcast build/image
#
# Run it:
#
#   docker run -p 8690:8690 -p 9090:9090 -v roomcast-data:/data \
#       roomcast --allow-anonymous
#
# The entrypoint is `roomcast serve`; flags go after the image name. The
# WebSocket and admin listeners are on every interface of the container, so
# the node refuses to start without an authentication key unless
# --allow-anonymous is given (docs/protocol.md section 4). The embedded NATS
# server listens on the container's loopback only: pool workers outside the
# container reach it once it is told to listen further and given their
# credentials (docs/protocol.md section 2):
#
#   docker run -p 8690:8690 -p 4222:4222 -e ROOMCAST_NATS_PUBLISHER_PASSWORD=... \
#       roomcast --allow-anonymous --nats-listen 0.0.0.0:4222
#
# (or --nats-publisher-nkey U..., or --nats-allow-anonymous to let any client
# publish events, never read them). In production, give --nats an external
# cluster (natsconf/). /data holds the embedded JetStream store; mount a
# volume there to keep events across restarts.
# No builder image is needed (none can be pulled on the test machines): the
# binary is built by the host's Go toolchain, which is also what makes the
# image reproducible from the repository alone.

FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="roomcast" \
      org.opencontainers.image.description="Horizontally scaled WebSocket broadcaster on NATS JetStream, with resume on any node" \
      org.opencontainers.image.source="https://github.com/roomcast/roomcast" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY roomcast /roomcast
COPY --chown=65532:65532 data /data
ENV ROOMCAST_DATA_DIR=/data \
    ROOMCAST_LISTEN=0.0.0.0:8690 \
    ROOMCAST_ADMIN_LISTEN=0.0.0.0:9090
USER 65532:65532
EXPOSE 8690 9090
ENTRYPOINT ["/roomcast", "serve"]
