// Package integration holds roomcast's container tests: they build the
// roomcast binary and a minimal image FROM scratch, start edge nodes as
// Docker containers with testcontainers-go, and talk to them the way clients,
// pool workers and operators do, through ports mapped to 127.0.0.1.
//
// The tests need a Docker engine but no registry: nothing is pulled. Without
// Docker they are skipped, except under CI=true, where that is a failure.
// Everything they create (containers, the image, temporary files) is removed
// when they end, whether they pass or fail.
package integration
