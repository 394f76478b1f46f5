package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
)

// topMaxBody bounds a /clusterz answer top reads: a cluster of a few
// hundred nodes with ten connections each fits many times over.
const topMaxBody = 32 << 20

// runTop shows every node of the cluster, as one node's /clusterz tells
// it, refreshed every --interval until interrupted; --once prints one
// view and exits (1 when it could not get one), --json prints each view
// as one JSON object per line.
func runTop(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "top", "")
	admin := fs.String("admin", "http://"+config.DefaultAdminListen, "URL of one node's admin listener (http:// or https://); any node shows the whole cluster")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin listener's bearer token (serve's --admin-token-file), when it has one")
	caFile := fs.String("tls-ca", "", "PEM CA bundle to trust for an https:// admin URL (default: the system's)")
	serverName := fs.String("tls-server-name", "", "name to verify the admin listener's certificate against, when the URL's host is another (a port-forward)")
	interval := fs.Duration("interval", 2*time.Second, "how often to refresh the view")
	asJSON := fs.Bool("json", false, "print each view as one JSON object per line (/clusterz's answer) instead of a screen")
	once := fs.Bool("once", false, "print one view and exit: 1 when the node cannot be read")
	if err := parseFlags(fs, env, args, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *interval < 100*time.Millisecond {
		return usagef("--interval must be at least 100ms, got %s", *interval)
	}
	src, err := newTopSource(*admin, *tokenFile, *caFile, *serverName)
	if err != nil {
		return err
	}
	show := topShow(env, *asJSON, *interval)
	if *once {
		v, raw, err := src.read(ctx)
		if err != nil {
			return err
		}
		return show(v, raw, nil)
	}
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		v, raw, err := src.read(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // interrupted
		}
		if err := show(v, raw, err); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// topSource reads one node's /clusterz.
type topSource struct {
	url    string
	token  string // "" without --admin-token-file
	client *http.Client
}

func newTopSource(admin, tokenFile, caFile, serverName string) (*topSource, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--admin %q: want http://HOST:PORT or https://HOST:PORT", admin)
	}
	tlsCfg, err := clientTLS(caFile, serverName)
	if err != nil {
		return nil, usagef("%w", err)
	}
	src := &topSource{
		url:    strings.TrimSuffix(u.String(), "/") + "/clusterz",
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}},
	}
	if tokenFile != "" {
		b, err := config.ReadSecretFile("--admin-token-file", tokenFile)
		if err != nil {
			return nil, usagef("%w", err)
		}
		src.token = strings.TrimSpace(string(b))
	}
	return src, nil
}

// errTopUnauthorized is a 401: the token is missing or not the node's.
var errTopUnauthorized = errors.New("401 Unauthorized: the admin listener wants its bearer token; give the file of serve's --admin-token-file with --admin-token-file")

// read fetches the view, with the raw JSON as the node sent it.
func (s *topSource) read(ctx context.Context) (cluster.View, []byte, error) {
	var v cluster.View
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return v, nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // the URL is said once, below
		}
		return v, nil, fmt.Errorf("cannot reach the admin listener at %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, topMaxBody))
	switch {
	case err != nil:
		return v, nil, fmt.Errorf("reading %s: %w", s.url, err)
	case resp.StatusCode == http.StatusUnauthorized && s.token == "":
		return v, nil, errTopUnauthorized
	case resp.StatusCode == http.StatusUnauthorized:
		return v, nil, errors.New("401 Unauthorized: the admin listener refuses the token of --admin-token-file")
	case resp.StatusCode == http.StatusNotFound:
		return v, nil, fmt.Errorf("%s: 404: the node has no /clusterz (a roomcast older than top?)", s.url)
	case resp.StatusCode != http.StatusOK:
		return v, nil, fmt.Errorf("%s: %s: %s", s.url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, nil, fmt.Errorf("%s: not a cluster view: %w", s.url, err)
	}
	return v, body, nil
}
