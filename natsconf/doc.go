// Package natsconf holds no code: its directory carries the NATS server
// configurations of a roomcast deployment (natsconf/README.md lists them), and its
// tests check that nats-server accepts each of them and that the accounts
// give workers and edges exactly the permissions they need.
package natsconf
