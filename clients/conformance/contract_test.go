package conformance_test

// The runner contract (README.md): what a scenario gives a runner, and the
// records a runner reports back.

// runnerConfig is a runner's configuration.
type runnerConfig struct {
	URLs         []string     `json:"urls"`
	Rooms        []roomConfig `json:"rooms"`
	Token        string       `json:"token,omitempty"`
	RefreshURL   string       `json:"refresh_url,omitempty"`
	BackoffMinMS int          `json:"backoff_min_ms,omitempty"`
	BackoffMaxMS int          `json:"backoff_max_ms,omitempty"`
}

// roomConfig is one room a runner follows: one subscribe of it.
type roomConfig struct {
	Room     string  `json:"room"`
	History  bool    `json:"history,omitempty"`
	State    bool    `json:"state,omitempty"`
	Conflate bool    `json:"conflate,omitempty"`
	Since    *uint64 `json:"since,omitempty"`   // a position the application stored
	Epoch    string  `json:"epoch,omitempty"`   // with Since
	AfterN   *int    `json:"after_n,omitempty"` // subscribe once the event with this n was handed over, not at the start
}

// record is one thing a runner reports; which fields are set depends on
// Kind.
type record struct {
	Kind string `json:"kind"` // ready, event, subscribed, notice, stopped

	Room string `json:"room,omitempty"`
	Seq  uint64 `json:"seq,omitempty"`

	// event
	Event     string `json:"event,omitempty"`
	N         int    `json:"n"`
	Conflated int    `json:"conflated,omitempty"`

	// subscribed
	Epoch     string `json:"epoch,omitempty"`
	Replayed  int    `json:"replayed,omitempty"`
	Recovered bool   `json:"recovered,omitempty"`
	Resumed   bool   `json:"resumed,omitempty"`
	State     int    `json:"state"`

	// notice, stopped
	Notice string `json:"notice,omitempty"`
	Code   int    `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
	Text   string `json:"text,omitempty"`
}

// The notices of the contract.
const (
	noticeConnected          = "connected"
	noticeDisconnected       = "disconnected"
	noticeDraining           = "draining"
	noticeRequestError       = "request_error"
	noticeTokenRefreshed     = "token_refreshed"
	noticeTokenRefreshFailed = "token_refresh_failed"
	noticeBadInput           = "bad_input"
)
