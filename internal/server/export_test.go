package server

import (
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// RedactURLs exposes redactURLs to the tests of package server_test.
var RedactURLs = redactURLs

// BrowserURL exposes browserURL, for the addresses a test cannot listen on.
var BrowserURL = browserURL

// EmbeddedNATS is the node's embedded NATS server, nil with --nats.
func (s *Server) EmbeddedNATS() *natsserver.Server { return s.ns }

// ConnCount is the node's open WebSocket connections now.
func (s *Server) ConnCount() int { return s.edge.ConnCount() }

// Shed sheds n connections as the rebalancer does.
func (s *Server) Shed(n int) int { return s.edge.Shed(n) }

// SampleOnce runs one round of the sampler now.
func (s *Server) SampleOnce() { s.sampleOnce(time.Now()) }
