# The roomcast image: one static binary FROM scratch, non-root, with CA
# certificates and nothing else (no shell, no package manager).
#
# Build it from the repository (a machine that can pull golang:*-alpine):
#
#   docker build -t roomcast .
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#       --build-arg REVISION=$(git rev-parse HEAD) -t REGISTRY/roomcast:TAG .
#
# The last stage, `image`, is the image. It takes its three files (the
# binary, the CA bundle, an empty data/) from the stage `binaries`. Here that
# stage builds them in golang:alpine; the integration tests and `task image`
# build the same `image` stage on machines that cannot pull any image: they
# put staged.Dockerfile (a `binaries` stage copying those files from a staged
# build context: a static binary built by the host's Go toolchain, the host's
# CA bundle) in front of this file's lines from `FROM scratch AS image` on.
# So what ships is the stage that was tested; keep everything the image is
# in that stage, and that line as it is (the tests look for it).
#
#   task image            # the staged build, tagged roomcast:$(git describe)
#
# Run it:
#
#   docker run -p 8690:8690 -p 9090:9090 -v roomcast-data:/data \
#       roomcast --allow-anonymous
#   docker run --rm roomcast version
#
# The entrypoint is /roomcast and the default command `serve`; flags after
# the image name replace the command, and a command line that starts with a
# flag is serve's (so the line above runs `roomcast serve --allow-anonymous`),
# while `version`, `check`, `token` ... run those commands. The
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

ARG GO_VERSION=1.26.8

# The binary, built from the build context (the repository; .dockerignore
# leaves .git out, so `roomcast version` shows no commit: the VERSION and
# REVISION labels say which one it is).
FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/roomcast ./cmd/roomcast && \
    mkdir /out/data && \
    cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

# What the image stage copies, as staged.Dockerfile lays it out.
FROM scratch AS binaries
COPY --from=build /out/ /

FROM scratch AS image

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

COPY --from=binaries /ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binaries /roomcast /roomcast
COPY --from=binaries --chown=65532:65532 /data /data
ENV ROOMCAST_DATA_DIR=/data \
    ROOMCAST_LISTEN=0.0.0.0:8690 \
    ROOMCAST_ADMIN_LISTEN=0.0.0.0:9090
USER 65532:65532
EXPOSE 8690 9090
ENTRYPOINT ["/roomcast"]
CMD ["serve"]
