# One member of the integration tests' NATS cluster: the nats-server of
# go.mod, built static by the tests (CGO_ENABLED=0), FROM scratch, running
# the repository's natsconf/cluster.conf with its accounts.conf, so the
# files operators deploy are the ones tested. The JetStream store is /data
# (cluster.conf's store_dir), owned by the non-root user; no shell, no
# HEALTHCHECK: the tests wait on /healthz?js-enabled-only=true of the
# monitoring port, mapped on loopback.
#
# Build context (staged by natsimage_test.go): nats-server, cluster.conf,
# accounts.conf and an empty data/ directory.
#
# Environment: NATS_SERVER_NAME (nats-0, nats-1, nats-2: the names the
# routes of cluster.conf use, given as network aliases), and
# ROOMCAST_PUBLISHER_PASSWORD, ROOMCAST_EDGE_PASSWORD, ROOMCAST_SYS_PASSWORD.

FROM scratch

COPY nats-server /nats-server
COPY cluster.conf accounts.conf /etc/nats/
COPY --chown=65532:65532 data /data
USER 65532:65532
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server", "-c", "/etc/nats/cluster.conf"]
