# The `binaries` stage of a staged build context: the integration tests and
# `task image` put this in front of the Dockerfile's `image` stage (its
# lines from `FROM scratch AS image` on), so the image they build is the
# one `docker build .` makes, from files made on the host instead of in a
# golang image: the static binary roomcast, the CA bundle
# ca-certificates.crt, and an empty data/. See the Dockerfile.
FROM scratch AS binaries
COPY roomcast ca-certificates.crt /
COPY data /data

