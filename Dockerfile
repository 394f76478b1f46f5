# Production image of roomcast: one static binary on an empty base.
#
#   docker build -t roomcast .
#   docker run -p 8690:8690 -p 9090:9090 -p 4222:4222 -v roomcast-data:/data \
#       roomcast --allow-anonymous
#
# The entrypoint is `roomcast serve`; flags go after the image name. The
# listen addresses below are on every interface of the container, so the node
# refuses to start without an authentication key unless --allow-anonymous is
# given (PROTOCOL.md section 4). The embedded NATS server on 4222 has no
# authentication of its own: publish that port only on a private network.
# /data holds the embedded JetStream store; mount a volume there to keep
# events for resume across restarts.
#
# The tests in integration/ do not use this file: the builder image cannot be
# pulled on the test machines. They build the same runtime layout (the stage
# after the builder: binary, /data, environment, user, ports, entrypoint)
# FROM scratch around a static binary built on the host; see imageDockerfile
# in integration/image_test.go and keep the two in step.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/roomcast ./cmd/roomcast \
    && mkdir /out/data

FROM scratch
COPY --from=build /out/roomcast /roomcast
COPY --from=build --chown=65532:65532 /out/data /data
ENV ROOMCAST_DATA_DIR=/data \
    ROOMCAST_LISTEN=0.0.0.0:8690 \
    ROOMCAST_ADMIN_LISTEN=0.0.0.0:9090 \
    ROOMCAST_NATS_LISTEN=0.0.0.0:4222
USER 65532:65532
EXPOSE 8690 9090 4222
ENTRYPOINT ["/roomcast", "serve"]
