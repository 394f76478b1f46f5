package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/edge"
	"github.com/roomcast/roomcast/internal/rebalance"
	"github.com/roomcast/roomcast/internal/room"
)

// Serve is the configuration of `roomcast serve`.
type Serve struct {
	Listen      string
	AdminListen string
	ServerName  string

	NATS          List // empty: embedded
	NATSListen    string
	DataDir       string
	NATSSync      NATSSync // the embedded NATS's fsync policy
	SubjectPrefix string

	StreamReplicas      int
	RetentionMaxAge     time.Duration
	RetentionMaxPerRoom int64
	MaxPayload          int
	StateMaxKeysPerRoom int
	StateMaxAge         time.Duration

	MaxConnections    int
	MaxSubscriptions  int
	RateLimit         int
	MaxMessageSize    int
	SendQueueMessages int
	SendQueueBytes    int
	SocketSendBuffer  int
	CatchUpMemory     int64
	ReplayRate        int
	PingInterval      time.Duration
	WriteTimeout      time.Duration
	AllowedOrigins    List
	DrainTimeout      time.Duration
	DrainDelay        time.Duration
	Pprof             bool
	Compression       bool
	Dashboard         bool
	Rebalance         rebalance.Policy // --rebalance, --rebalance-tolerance, --rebalance-rate

	// MaxUnauthenticated and MaxUnauthenticatedPerSource bound the
	// connections upgraded without a token until they authenticate;
	// TrustedProxies may name the source by X-Forwarded-For.
	MaxUnauthenticated          int
	MaxUnauthenticatedPerSource int
	TrustedProxies              List

	Auth        Auth
	NATSAuth    NATSAuth
	NATSWorkers NATSWorkers // the embedded NATS's pool workers

	TLSCert string // WebSocket listener's certificate; empty: plain ws://
	TLSKey  string
	TLSCA   string // client CA: client certificates are required

	AdminTLSCert   string // admin listener's certificate; empty: plain http://
	AdminTLSKey    string
	AdminTokenFile string // bearer token for /metrics and pprof; empty: none asked

	LogFormat      string
	LogLevel       string
	AllowAnonymous bool
}

// Defaults of Serve, docs/protocol.md section 6's where it names them.
const (
	DefaultListen       = "127.0.0.1:8690"
	DefaultAdminListen  = "127.0.0.1:9090"
	DefaultNATSListen   = "127.0.0.1:4222"
	DefaultServerName   = "roomcast"
	DefaultDrainTimeout = 25 * time.Second
	DefaultRateLimit    = 50
)

// ServeCompat are the compatible environment names of section 5.
var ServeCompat = map[string][]string{
	"admin-listen": {"PROMETHEUS_PORT"}, // a port: see AdminAddr
	"tls-cert":     {"WEBSOCKET_CERT_FILE"},
	"tls-key":      {"WEBSOCKET_KEY_FILE"},
	"tls-ca":       {"WEBSOCKET_CA_FILE"},
}

// RegisterServe defines serve's flags on fs and returns the settings they fill.
func RegisterServe(fs *flag.FlagSet) *Serve {
	c := &Serve{}
	fs.StringVar(&c.Listen, "listen", DefaultListen, "WebSocket listen address")
	fs.StringVar(&c.AdminListen, "admin-listen", DefaultAdminListen, "address (or port) of /healthz, /readyz and /metrics")
	fs.StringVar(&c.ServerName, "server-name", DefaultServerName, "name of this node in metrics and logs")
	fs.Var(&c.NATS, "nats", "NATS URLs, comma-separated or repeated; empty starts an embedded NATS server")
	fs.StringVar(&c.NATSListen, "nats-listen", DefaultNATSListen, "client address of the embedded NATS server")
	fs.StringVar(&c.DataDir, "data-dir", "", "JetStream storage of the embedded NATS server (default: the user's data directory)")
	c.NATSSync = DefaultNATSSync
	fs.Var(&c.NATSSync, "nats-sync", `when the embedded NATS fsyncs what it stored: "always" (before acknowledging each event) or a duration such as 1s (that often; what the last one left unsynced is lost if the host loses power or its kernel crashes)`)
	fs.StringVar(&c.SubjectPrefix, "subject-prefix", bus.DefaultPrefix, "NATS subject prefix")
	fs.IntVar(&c.StreamReplicas, "stream-replicas", 1, "replicas of the JetStream stream (3 on a cluster)")
	fs.DurationVar(&c.RetentionMaxAge, "retention-max-age", bus.DefaultMaxAge, "how long events are kept for resume (0: no age limit)")
	fs.Int64Var(&c.RetentionMaxPerRoom, "retention-max-per-room", bus.DefaultMaxMsgsPerRoom, "events kept per room (0: no count limit)")
	fs.IntVar(&c.StateMaxKeysPerRoom, "state-max-keys-per-room", bus.DefaultMaxKeysPerRoom, "keys whose latest event each room keeps for subscribes with state; past it the least recently written go first")
	fs.DurationVar(&c.StateMaxAge, "state-max-age", 0, "how long a key not written again is kept (0: until evicted or deleted)")
	fs.IntVar(&c.MaxPayload, "max-payload", bus.DefaultMaxPayload, "largest event payload a worker may publish, bytes")
	fs.IntVar(&c.MaxConnections, "max-connections", 0, "connection limit of this node (0: none)")
	fs.IntVar(&c.MaxUnauthenticated, "max-unauthenticated", 0, "connections upgraded without a token that may wait at once for their auth request; past it such upgrades get 503 (0: a quarter of --max-connections, or 1024 when that is 0; not used without authentication keys)")
	fs.IntVar(&c.MaxUnauthenticatedPerSource, "max-unauthenticated-per-source", edge.DefaultMaxUnauthenticatedPerSource, "of those, how many from one source address (an IPv4 address, an IPv6 /64)")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "addresses or CIDRs of proxies whose X-Forwarded-For names the client for the caps per source address, comma-separated (default: none; the header is ignored)")
	fs.IntVar(&c.MaxSubscriptions, "max-subscriptions", 100, "subscriptions per connection")
	fs.IntVar(&c.RateLimit, "rate-limit", DefaultRateLimit, "messages a second a connection may send, with a burst as large (RATE_LIMITED; going on past it closes with 4029); 0: no limit")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", conn.DefaultMaxMessageSize, "largest client message, bytes; larger closes with 1009")
	fs.IntVar(&c.SendQueueMessages, "send-queue-messages", conn.DefaultMaxQueueMessages, "messages queued per connection before it is closed with 4008")
	fs.IntVar(&c.SendQueueBytes, "send-queue-bytes", conn.DefaultMaxQueueBytes, "bytes queued per connection before it is closed with 4008")
	fs.IntVar(&c.SocketSendBuffer, "socket-send-buffer", conn.DefaultSocketSendBuffer, "each client socket's send buffer, bytes (the kernel doubles it): what a client that stopped reading holds of the node's kernel memory, and with the round trip what bounds one client's throughput; negative: the kernel's autotuning")
	fs.Int64Var(&c.CatchUpMemory, "catchup-memory", room.DefaultCatchUpMemory, "bytes that resumes' catch-ups may hold in all on top of the rooms' steady tails (tails grown past 64 KiB, stream reads under way); past it, reads stop extending tails and resumes read the stream for themselves, slower but never wrong")
	fs.IntVar(&c.ReplayRate, "replay-rate", bus.DefaultReaderRate, "events a second a connection may read from the stream (resumes older than a room's tail in memory), past a burst of 4 seconds' worth; 0: not paced")
	fs.DurationVar(&c.PingInterval, "ping-interval", conn.DefaultPingInterval, "WebSocket keep-alive ping period")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", conn.DefaultWriteTimeout, "how long one write to a client may block before the connection is dropped")
	fs.Var(&c.AllowedOrigins, "allowed-origins", "browser origins that may connect, comma-separated; * in one stands for any run of characters but / (https://*.example.com), * alone for any origin (default: the same host and loopback pages)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", DefaultDrainTimeout, "how long a shutdown may take; closes are spread over most of it")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0, "on shutdown, how long /readyz says 503 before the listener closes, so load balancers stop sending clients first")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the admin listener")
	fs.BoolVar(&c.Compression, "compression", false, "accept permessage-deflate (RFC 7692) from clients that offer it, without context takeover: each event is compressed once per room and shared by every member that negotiated it")
	fs.BoolVar(&c.Dashboard, "dashboard", true, "serve the live web dashboard to plain HTTP requests on the WebSocket listener (GET /); upgrades on / work either way")
	registerRebalance(fs, &c.Rebalance)
	c.Auth.register(fs)
	c.NATSAuth.register(fs)
	c.NATSWorkers.register(fs)
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) of the WebSocket listener: serve wss://; reloaded when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.TLSCA, "tls-ca", "", "PEM CA bundle: clients must present a certificate it signed (mTLS)")
	fs.StringVar(&c.AdminTLSCert, "admin-tls-cert", "", "PEM certificate (chain) of the admin listener: serve https://; reloaded when the file changes")
	fs.StringVar(&c.AdminTLSKey, "admin-tls-key", "", "PEM private key of --admin-tls-cert")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", "", "file holding a bearer token that /metrics and /debug/pprof/ require (Authorization: Bearer ...); /healthz and /readyz stay open for probes; read again when the file changes")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.AllowAnonymous, "allow-anonymous", false, "serve without authentication on a non-loopback address")
	return c
}

// Embedded reports whether serve starts its own NATS server.
func (c *Serve) Embedded() bool { return len(c.NATS) == 0 }

// AdminAddr is the admin listen address; a bare port (PROMETHEUS_PORT) is
// put on the WebSocket listener's host.
func (c *Serve) AdminAddr() string {
	if !strings.Contains(c.AdminListen, ":") {
		host, _, _ := net.SplitHostPort(c.Listen)
		return net.JoinHostPort(host, c.AdminListen)
	}
	return c.AdminListen
}

// ResolvedDataDir is DataDir, or a per-user default.
func (c *Serve) ResolvedDataDir() string {
	if c.DataDir != "" {
		return c.DataDir
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "roomcast", "jetstream")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "roomcast", "jetstream")
	}
	return filepath.Join(os.TempDir(), "roomcast", "jetstream")
}

// CheckDataDir makes sure the embedded NATS server can store its JetStream
// data: it creates the data directory if it is missing and checks that it
// is writable by creating and removing a file in it, so a bad --data-dir
// fails at once and by name instead of as an embedded server that never
// gets ready. It does nothing when serve uses an external NATS. Unlike
// Validate it touches the file system, so serve calls it just before it
// starts the embedded server.
func (c *Serve) CheckDataDir() error {
	if !c.Embedded() {
		return nil
	}
	dir := c.ResolvedDataDir()
	if err := checkWritableDir(dir); err != nil {
		return fmt.Errorf("data directory %s (--data-dir) cannot hold JetStream storage: %w", dir, err)
	}
	return nil
}

// checkWritableDir creates dir if needed and writes a file in it. Trying
// is the only check that holds everywhere: permission bits say nothing to
// root, nor about a read-only mount or a full disk.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".roomcast-write-check-*")
	if err != nil {
		return err
	}
	_, werr := f.WriteString("roomcast")
	return errors.Join(werr, f.Close(), os.Remove(f.Name()))
}

// Validate reports every problem of c at once.
func (c *Serve) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for flagName, addr := range map[string]string{"listen": c.Listen, "admin-listen": c.AdminAddr()} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("--%s %q: %v", flagName, addr, err)
		}
	}
	if c.Embedded() {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			bad("--nats-listen %q: %v", c.NATSListen, err)
		}
	} else if c.NATSSync != DefaultNATSSync {
		bad("--nats-sync is for the embedded NATS; an external NATS syncs as its own configuration says (sync_interval in the jetstream block, see natsconf/)")
	}
	for i, u := range c.NATS {
		// Never quoted: a NATS URL may carry a user's password or token.
		if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
			bad("--nats: URL %d of %d is not a URL such as nats://host:4222 (an unescaped %%, @ or , in a password?)", i+1, len(c.NATS))
		}
	}
	if err := bus.CheckPrefix(c.SubjectPrefix); err != nil {
		bad("--subject-prefix: %v", err)
	}
	positive := map[string]int{
		"stream-replicas": c.StreamReplicas, "max-subscriptions": c.MaxSubscriptions,
		"max-message-size": c.MaxMessageSize, "send-queue-messages": c.SendQueueMessages,
		"send-queue-bytes": c.SendQueueBytes, "max-payload": c.MaxPayload,
		"max-unauthenticated-per-source": c.MaxUnauthenticatedPerSource,
	}
	for name, v := range positive {
		if v <= 0 {
			bad("--%s must be positive, got %d", name, v)
		}
	}
	if c.StreamReplicas > 5 {
		bad("--stream-replicas at most 5, got %d", c.StreamReplicas)
	}
	if c.CatchUpMemory <= 0 {
		bad("--catchup-memory must be positive, got %d", c.CatchUpMemory)
	}
	if c.StateMaxKeysPerRoom < 1 {
		bad("--state-max-keys-per-room must be at least 1")
	}
	if c.StateMaxAge < 0 || c.StateMaxAge > 0 && c.StateMaxAge < time.Second {
		bad("--state-max-age must be 0 (no limit) or at least 1s, NATS's shortest message TTL")
	}
	if c.MaxConnections < 0 || c.RetentionMaxPerRoom < 0 || c.RetentionMaxAge < 0 || c.RateLimit < 0 || c.MaxUnauthenticated < 0 || c.ReplayRate < 0 {
		bad("--max-connections, --max-unauthenticated, --rate-limit, --replay-rate, --retention-max-per-room and --retention-max-age cannot be negative")
	}
	if err := edge.CheckTrustedProxies(c.TrustedProxies); err != nil {
		bad("--trusted-proxies: %v", err)
	}
	if err := c.Rebalance.Check(); err != nil {
		errs = append(errs, err)
	}
	if c.DrainDelay < 0 {
		bad("--drain-delay cannot be negative")
	}
	if c.PingInterval < time.Second || c.WriteTimeout < time.Second || c.DrainTimeout <= 0 {
		bad("--ping-interval and --write-timeout must be at least 1s, --drain-timeout positive")
	}
	if c.SendQueueBytes < c.MaxPayload+1024 {
		bad("--send-queue-bytes (%d) must hold at least one event of --max-payload (%d) plus its envelope", c.SendQueueBytes, c.MaxPayload)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("--log-format %q: want text or json", c.LogFormat)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("--log-level: %v", err)
	}
	errs = append(errs, c.Auth.validate()...)
	errs = append(errs, c.NATSAuth.validate(c.Embedded())...)
	errs = append(errs, c.NATSWorkers.validate(c.Embedded(), c.NATSListen)...)
	if err := edge.CheckOrigins(c.AllowedOrigins); err != nil {
		bad("--allowed-origins: %v", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together (or WEBSOCKET_CERT_FILE and WEBSOCKET_KEY_FILE)")
	}
	if (c.AdminTLSCert == "") != (c.AdminTLSKey == "") {
		bad("--admin-tls-cert and --admin-tls-key go together")
	}
	if c.TLSCA != "" && c.TLSCert == "" {
		bad("--tls-ca verifies client certificates, which needs TLS: set --tls-cert and --tls-key too")
	}
	if err := c.checkAnonymous(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReadSecrets reads the secrets that never come from flags: the JWT HMAC
// secret, the NATS password or token, and the embedded NATS's worker
// password.
func (c *Serve) ReadSecrets(getenv func(string) string) error {
	c.NATSAuth.readSecrets(getenv)
	return errors.Join(c.Auth.ReadSecrets(getenv), c.NATSWorkers.readSecrets(getenv))
}

// TLS reports whether the WebSocket listener serves TLS.
func (c *Serve) TLS() bool { return c.TLSCert != "" }

// checkAnonymous applies docs/protocol.md section 4: without keys, serve only on
// loopback unless the operator opts in.
func (c *Serve) checkAnonymous() error {
	if c.AllowAnonymous || c.Auth.Configured() {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil // reported above
	}
	if edge.IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address and no authentication keys are configured: "+
		"anyone who can reach it could read every room; configure keys or pass --allow-anonymous "+
		"(for example behind an authenticating proxy)", c.Listen)
}
