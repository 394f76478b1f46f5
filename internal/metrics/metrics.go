// Package metrics holds every Prometheus collector of an edge node. The names
// of the websocket_* collectors are docs/protocol.md section 7's, which existing
// dashboards query; everything else is roomcast_*.
package metrics

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/wire"
)

// Close reasons: a fixed set, so the label's cardinality is bounded.
const (
	CloseClient       = "client"        // the client closed or went away
	CloseSlowConsumer = "slow_consumer" // 4008
	CloseTooBig       = "too_big"       // 1009
	CloseProtocol     = "protocol"      // 1002, 1003, 1007
	CloseDraining     = "draining"      // 1001
	CloseStreamReset  = "stream_reset"  // 4010
	CloseRateLimited  = "rate_limited"  // 4029
	CloseRebalance    = "rebalance"     // 4012
	CloseAuth         = "auth"          // 1008, 4001
	CloseTimeout      = "timeout"       // read deadline passed
	CloseOther        = "other"
)

// CloseReasons returns every reason of roomcast_connection_closes_total.
func CloseReasons() []string {
	return []string{CloseClient, CloseSlowConsumer, CloseTooBig, CloseProtocol, CloseDraining,
		CloseStreamReset, CloseRateLimited, CloseRebalance, CloseAuth, CloseTimeout, CloseOther}
}

// AuthUserMismatch is the auth failure reason of a refresh whose token is
// for another user than the connection's; the others are auth.Reasons.
const AuthUserMismatch = "user_mismatch"

// AuthFailureReasons returns every reason of roomcast_auth_failures_total.
func AuthFailureReasons() []string { return append(auth.Reasons(), AuthUserMismatch) }

// Where a resume's missed events came from (roomcast_resumes_total's source).
const (
	ResumeTail   = "tail"   // the room's tail in memory
	ResumeStream = "stream" // a read of the stream
)

// ResumeSources returns every source of roomcast_resumes_total.
func ResumeSources() []string { return []string{ResumeTail, ResumeStream} }

// Kinds of JetStream requests. The keeper's (publish, msg_delete, and its
// stream_info) are counted in roomcast_state_keeper_requests_total instead.
const (
	StreamDirectGet = "direct_get"
	StreamMultiLast = "multi_last"
	StreamLeaderGet = "leader_get"
	StreamInfo      = "stream_info"
	// A long replay's consumer (bus/longreplay.go): made, pulled from,
	// deleted.
	StreamConsumerCreate = "consumer_create"
	StreamConsumerPull   = "consumer_pull"
	StreamConsumerDelete = "consumer_delete"
	StreamPublish        = "publish"    // the keeper's only
	StreamMsgDelete      = "msg_delete" // the keeper's only
)

// StreamKinds returns every kind of roomcast_stream_requests_total: the
// requests made for clients and readiness, not the keeper's.
func StreamKinds() []string {
	return []string{StreamDirectGet, StreamMultiLast, StreamLeaderGet, StreamInfo,
		StreamConsumerCreate, StreamConsumerPull, StreamConsumerDelete}
}

// Ops of roomcast_state_writes_total and results of roomcast_state_reads_total.
const (
	StateSet    = "set"
	StateDelete = "delete"
	StateOK     = "ok"
	StateError  = "error"
)

// Reasons an upgrade is refused: a fixed set, every one exported from the
// start at 0 so dashboards see the series before the first refusal.
const (
	RefusedOrigin          = "origin"          // 403: a browser Origin --allowed-origins does not allow
	RefusedCapacity        = "capacity"        // 503 at --max-connections; a handshake closed to make room in a full gate
	RefusedDraining        = "draining"        // 503: the node is draining
	RefusedUnauthenticated = "unauthenticated" // 503: the budget of connections not yet authenticated is spent
	RefusedSource          = "source"          // a cap per source address (handshakes, unauthenticated connections)
	RefusedBadRequest      = "bad_request"     // not a valid upgrade, or at another path
	RefusedTimeout         = "timeout"         // the request head did not arrive in time
)

// RefusedReasons returns every reason of roomcast_upgrades_refused_total.
func RefusedReasons() []string {
	return []string{RefusedOrigin, RefusedCapacity, RefusedDraining, RefusedUnauthenticated,
		RefusedSource, RefusedBadRequest, RefusedTimeout}
}

// Metrics is the set of collectors one edge node updates.
type Metrics struct {
	all []prometheus.Collector // every collector below, in registration order

	// docs/protocol.md section 7.
	Connections prometheus.Gauge
	Messages    *prometheus.CounterVec   // message_type
	Broadcast   *prometheus.HistogramVec // channel (room kind)

	// roomcast_*.
	Accepted      prometheus.Counter     // upgrades accepted
	Closes        *prometheus.CounterVec // reason
	Rooms         prometheus.Gauge       // rooms with local members
	Subscriptions prometheus.Gauge       // client subscriptions on this node
	BadPayloads   prometheus.Counter     // stored messages that are not valid events
	BadKeys       prometheus.Counter     // of those, the ones refused for their key headers
	Duplicates    prometheus.Counter     // live events dropped as already delivered
	Gaps          prometheus.Counter     // live-feed gaps found
	Backfilled    prometheus.Counter     // events delivered by backfill
	Replayed      prometheus.Counter     // events sent to resuming clients
	Delivered     prometheus.Counter     // bytes of event frames queued to members
	Written       prometheus.Counter     // bytes of queued frames written to sockets, as on the wire
	Conflated     prometheus.Counter     // queued keyed events dropped by conflation, superseded by newer ones
	Latency       prometheus.Histogram   // from an event's storing to its write to a client
	QueueDepth    prometheus.Histogram   // frames a writer found queued and wrote at once
	Reconnects    prometheus.Counter     // NATS reconnections
	LiveDrops     prometheus.Counter     // live subscriptions that dropped messages (slow consumer)
	ForgedLive    prometheus.Counter     // live messages not republished by the stream
	ReplicaLags   prometheus.Counter     // reads that found a replica behind the stream leader
	StreamResets  prometheus.Counter     // times the stream was found recreated
	StreamCalls   *prometheus.CounterVec // JetStream requests by kind
	ReadsWaiting  prometheus.Gauge       // stream reads waiting for a slot
	ReadsPaced    prometheus.Counter     // stream reads a connection's budget held back
	Resumes       *prometheus.CounterVec // resumed subscribes by source (tail, stream) and recovered
	CatchUpBytes  prometheus.Gauge       // bytes resumes' catch-ups hold on top of the rooms' steady tails
	Received      prometheus.Counter     // live events received from NATS
	Ready         prometheus.Gauge       // the last /readyz answer: 1 ready
	NATSConnected prometheus.Gauge       // 1 while connected
	Draining      prometheus.Gauge       // 1 while draining
	BadRequests   *prometheus.CounterVec // code
	AuthFailures  *prometheus.CounterVec // reason (auth.Reason, or user_mismatch for a refresh as another user)
	Refused       *prometheus.CounterVec // upgrades refused, by reason (Refused*)
	Unauth        prometheus.Gauge       // connections upgraded without a token, not yet authenticated

	// Sampled every few seconds from every connection's queue (no label
	// per connection).
	ConnLag         prometheus.Histogram // events queued per connection
	ConnQueuedBytes prometheus.Histogram // bytes queued per connection
	ConnLagging     prometheus.Gauge     // connections whose oldest queued frame waited past --lag-threshold
	// Rebalancing (package rebalance).
	RebalanceShed prometheus.Counter // connections shed to rebalance the cluster
	ClusterNodes  prometheus.Gauge   // ready nodes the rebalancer counts, this one included

	// Keyed state (docs/protocol.md, "State").
	KeeperActive   prometheus.Gauge         // 1 on the node whose keeper feeds the state stream
	KeeperLag      prometheus.Gauge         // events stored but not yet in the state, as the active keeper last read
	KeeperRequests prometheus.Counter       // JetStream requests of this node\'s keeper
	StateWrites    *prometheus.CounterVec   // op: set, delete
	StateEvicted   prometheus.Counter       // keys evicted past --state-max-keys-per-room
	StateMissed    prometheus.Counter       // events removed from the stream before the keeper read them
	StateReads     *prometheus.CounterVec   // result: ok, error
	StateKeys      *prometheus.HistogramVec // channel (room kind): keys a state read returned
}

// New creates the collectors, labelled with the server name, and registers
// them on reg.
func New(reg prometheus.Registerer, server string) *Metrics {
	constLabels := prometheus.Labels{"server": server}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels}, labels)
	}
	m := &Metrics{
		Connections: gauge("websocket_connections", "Open WebSocket connections."),
		Messages:    counterVec("websocket_messages_total", "WebSocket messages by type, both directions.", "message_type"),
		Broadcast: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "websocket_broadcast_duration_seconds", Help: "Time to queue one event to every local member of its room, by room kind.",
			ConstLabels: constLabels, Buckets: []float64{1e-6, 5e-6, 25e-6, 1e-4, 5e-4, 2.5e-3, 1e-2, 5e-2, 0.25},
		}, []string{"channel"}),
		Accepted:      counter("roomcast_connections_accepted_total", "WebSocket connections accepted (upgraded)."),
		Closes:        counterVec("roomcast_connection_closes_total", "Closed connections by reason.", "reason"),
		Rooms:         gauge("roomcast_rooms", "Rooms with at least one member on this node."),
		Subscriptions: gauge("roomcast_subscriptions", "Client room subscriptions on this node."),
		BadPayloads:   counter("roomcast_bad_payloads_total", "Stored messages dropped because they are not valid events."),
		BadKeys:       counter("roomcast_bad_keys_total", "Stored messages dropped because their key headers break the key grammar (also counted in roomcast_bad_payloads_total)."),
		Duplicates:    counter("roomcast_duplicates_total", "Live events dropped because they were already delivered."),
		Gaps:          counter("roomcast_live_gaps_total", "Gaps found on the live feed."),
		Backfilled:    counter("roomcast_backfilled_events_total", "Events delivered by backfilling a gap."),
		Delivered:     counter("roomcast_delivered_bytes_total", "Bytes of event frames queued to members (each member counted), uncompressed."),
		Written:       counter("roomcast_written_bytes_total", "Bytes of queued frames (events, responses) written to client sockets, as on the wire: compressed for connections that negotiated permessage-deflate."),
		Conflated:     counter("roomcast_conflated_events_total", "Queued keyed events dropped from conflating connections that fell behind, because a newer event of the same room and key was queued after them."),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roomcast_publish_to_delivery_seconds", Help: "From an event's storing in the stream to its write to a client's socket (the first event of each write).",
			ConstLabels: constLabels, Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		QueueDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roomcast_send_batch_frames", Help: "Frames a connection's writer found queued and wrote at once: how deep send queues run.",
			ConstLabels: constLabels, Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		Reconnects:    counter("roomcast_nats_reconnects_total", "NATS reconnections."),
		Replayed:      counter("roomcast_replayed_events_total", "Events replayed to resuming clients."),
		LiveDrops:     counter("roomcast_live_drops_total", "Times a room's live subscription dropped messages because the room fell behind (the room resyncs)."),
		ForgedLive:    counter("roomcast_live_refused_total", "Live messages refused because the stream did not republish them."),
		ReplicaLags:   counter("roomcast_replica_lag_reads_total", "Stream reads that found the answering replica behind the stream leader."),
		StreamResets:  counter("roomcast_stream_resets_total", "Times the stream was found deleted or recreated."),
		StreamCalls:   counterVec("roomcast_stream_requests_total", "JetStream requests by kind (direct_get, multi_last, leader_get, stream_info, consumer_create, consumer_pull, consumer_delete).", "kind"),
		ReadsWaiting:  gauge("roomcast_stream_reads_waiting", "Stream reads waiting for one of the node's read slots (shared fairly between connections and rooms)."),
		ReadsPaced:    counter("roomcast_stream_reads_paced_total", "Stream reads held back because their connection had read its budget of events from the stream (--replay-rate)."),
		Resumes:       counterVec("roomcast_resumes_total", "Subscribes with since, by where the missed events came from (tail, stream) and whether nothing was lost.", "source", "recovered"),
		CatchUpBytes:  gauge("roomcast_catchup_bytes", "Bytes of event frames that resumes' catch-ups hold on top of the rooms' steady tails: tails past their steady bound and stream reads under way. Past --catchup-memory, stream reads stop extending tails and resumes read for themselves."),
		Received:      counter("roomcast_events_received_total", "Live events received from NATS (every room with local members)."),
		Ready:         gauge("roomcast_ready", "1 when the last /readyz answered 200, 0 when it answered 503."),
		NATSConnected: gauge("roomcast_nats_connected", "1 while the NATS connection is up."),
		Draining:      gauge("roomcast_draining", "1 while the node drains."),
		BadRequests:   counterVec("roomcast_request_errors_total", "Error responses by code.", "code"),
		AuthFailures:  counterVec("roomcast_auth_failures_total", "Tokens refused, by reason.", "reason"),
		Refused: counterVec("roomcast_upgrades_refused_total", "WebSocket upgrades refused, and handshakes closed before their end, by reason: "+
			"origin, capacity, draining, unauthenticated, source, bad_request, timeout.", "reason"),
		Unauth: gauge("roomcast_unauthenticated_connections", "Connections upgraded without a token that have not authenticated yet: what --max-unauthenticated bounds."),
	}
	m.KeeperActive = gauge("roomcast_state_keeper_active", "1 on the node whose state keeper feeds the state stream (one node of a deployment at a time).")
	m.KeeperLag = gauge("roomcast_state_keeper_lag_events", "Events stored in the stream but not yet in the keyed state, as the active keeper last read (0 on other nodes).")
	m.KeeperRequests = counter("roomcast_state_keeper_requests_total", "JetStream requests of this node's state keeper: reads of the events and of keys, its batches (not counted in roomcast_stream_requests_total).")
	m.StateWrites = counterVec("roomcast_state_writes_total", "Keys written to the state stream by this node's keeper, by op (set, delete).", "op")
	m.StateEvicted = counter("roomcast_state_keys_evicted_total", "Keys evicted from a room's state because the room had --state-max-keys-per-room keys (the least recently written first).")
	m.StateMissed = counter("roomcast_state_events_missed_total", "Events removed from the stream by retention before the keeper read them: their keys may be out of date.")
	m.StateReads = counterVec("roomcast_state_reads_total", "Reads of a room's state for subscribes with state, by result (ok, error); subscribes that share a read count once.", "result")
	m.StateKeys = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "roomcast_state_keys", Help: "Keys in a room's state as a state read found them, by room kind.",
		ConstLabels: constLabels, Buckets: prometheus.ExponentialBuckets(1, 4, 9),
	}, []string{"channel"})
	m.ConnLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "roomcast_connection_lag_events", Help: "Events queued for a connection and not yet written, sampled from every connection every 2s.",
		ConstLabels: constLabels, Buckets: []float64{0, 1, 10, 100, 1000, 10000},
	})
	m.ConnQueuedBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "roomcast_connection_queued_bytes", Help: "Bytes queued for a connection and not yet written (uncompressed), sampled from every connection every 2s.",
		ConstLabels: constLabels, Buckets: append([]float64{0}, prometheus.ExponentialBuckets(1024, 4, 7)...), // to 4 MiB, the default --send-queue-bytes
	})
	m.ConnLagging = gauge("roomcast_connections_lagging", "Connections whose oldest queued frame has waited at least --lag-threshold, at the last sample (every 2s).")
	m.RebalanceShed = counter("roomcast_rebalance_shed_total", "Connections this node closed with 4012 to rebalance the cluster (also counted in roomcast_connection_closes_total{reason=\"rebalance\"}).")
	m.ClusterNodes = gauge("roomcast_cluster_nodes", "Ready nodes the rebalancer counts, this one included: draining nodes, and nodes not heard from lately, are not counted.")
	m.startAtZero()
	m.all = []prometheus.Collector{m.Connections, m.Messages, m.Broadcast, m.Accepted, m.Closes, m.Rooms, m.Subscriptions,
		m.BadPayloads, m.BadKeys, m.Duplicates, m.Gaps, m.Backfilled, m.Replayed, m.Delivered, m.Written, m.Conflated, m.Latency, m.QueueDepth, m.Reconnects,
		m.LiveDrops, m.ForgedLive, m.ReplicaLags, m.StreamResets, m.StreamCalls, m.ReadsWaiting, m.ReadsPaced, m.Resumes, m.CatchUpBytes,
		m.Received, m.Ready, m.NATSConnected, m.Draining, m.BadRequests, m.AuthFailures, m.Refused, m.Unauth,
		m.KeeperActive, m.KeeperLag, m.KeeperRequests, m.StateWrites, m.StateEvicted, m.StateMissed, m.StateReads, m.StateKeys,
		m.ConnLag, m.ConnQueuedBytes, m.ConnLagging,
		m.RebalanceShed, m.ClusterNodes}
	reg.MustRegister(m.all...)
	return m
}

// startAtZero makes every series of the labelled counters whose label
// values form a known set exist at 0 from the start: rate() and increase()
// see no first event of a series that appears with it, so an alert on the
// first 4008 or the first lost resume would never fire. The two histograms
// by room kind (Broadcast, StateKeys) stay lazy: a room kind is any name of
// docs/protocol.md section 1, so their label values are not known before
// the rooms are (Lazy lists them).
func (m *Metrics) startAtZero() {
	zero := func(v *prometheus.CounterVec, values []string) {
		for _, value := range values {
			v.WithLabelValues(value)
		}
	}
	zero(m.Messages, wire.MessageTypes())
	zero(m.Closes, CloseReasons())
	zero(m.BadRequests, wire.Codes())
	zero(m.AuthFailures, AuthFailureReasons())
	zero(m.Refused, RefusedReasons())
	zero(m.StreamCalls, StreamKinds())
	zero(m.StateWrites, []string{StateSet, StateDelete})
	zero(m.StateReads, []string{StateOK, StateError})
	for _, source := range ResumeSources() {
		for _, recovered := range []bool{true, false} {
			m.Resumes.WithLabelValues(source, strconv.FormatBool(recovered))
		}
	}
}

// Lazy returns the names of the metrics whose series appear only with
// their first observation (their label values are not a known set), with
// their histogram series' suffixes: every other series exists from the start.
func (m *Metrics) Lazy() []string {
	return append(seriesNames(m.Broadcast), seriesNames(m.StateKeys)...)
}

// Names returns the name of every metric of m, histograms' series suffixes
// (_bucket, _sum, _count) included, for checking what refers to them (the
// dashboard, the alert rules, docs/operations.md).
func (m *Metrics) Names() []string {
	var names []string
	for _, c := range m.all {
		names = append(names, seriesNames(c)...)
	}
	return names
}

// seriesNames returns the name of c's metric and, for a histogram, the
// names of its series (_bucket, _sum, _count).
func seriesNames(c prometheus.Collector) []string {
	descs := make(chan *prometheus.Desc, 1) // one metric per collector
	c.Describe(descs)
	name := descName(<-descs)
	switch c.(type) {
	case prometheus.Histogram, *prometheus.HistogramVec:
		return []string{name, name + "_bucket", name + "_sum", name + "_count"}
	}
	return []string{name}
}

// descName takes the metric name out of a Desc, which keeps it private
// (its String is `Desc{fqName: "name", ...}`).
func descName(d *prometheus.Desc) string {
	s := d.String()
	const key = `fqName: "`
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}

// NewUnregistered returns collectors registered nowhere, for tests and tools.
func NewUnregistered() *Metrics { return New(prometheus.NewRegistry(), "roomcast") }
