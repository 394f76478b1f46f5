// Package integration holds roomcast's container tests: they build the
// roomcast binary and a minimal image FROM scratch, start edge nodes as
// Docker containers with testcontainers-go, and talk to them the way clients,
// pool workers and operators do, through ports mapped to 127.0.0.1.
//
// TestCluster deploys what docs/deployment.md draws:
// three NATS servers (an image FROM scratch around the nats-server of
// go.mod, running natsconf/cluster.conf) and three edges, on a private
// Docker network, and fails them on purpose under load (issue 12): an edge
// killed, a rolling restart, a NATS server killed, an edge cut off, a NATS
// server stopped with SIGSTOP, the whole cluster restarted, the store
// wiped; and a scale-out (issue 20): every client on one edge, then the
// other two start and the edges rebalance, closing connections with 4012
// until each holds its share. Each scenario checks that every client received exactly what the
// stream holds from its start, and the test logs a report (go test -v).
//
// The tests need a Docker engine but no registry: nothing is pulled. Without
// Docker they are skipped, except under CI=true, where that is a failure.
// Everything they create (containers, networks, the images, temporary
// files) is removed when they end, whether they pass or fail.
package integration
