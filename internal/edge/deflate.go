package edge

import (
	"bytes"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
)

// deflateOffer negotiates permessage-deflate (RFC 7692) for one upgrade.
// roomcast compresses each event once and writes the same compressed frame
// to every member that negotiated the extension, which is only valid if no
// message depends on the ones before: so it always answers with
// server_no_context_takeover and client_no_context_takeover (the latter
// also lets client messages be inflated with no state kept per
// connection). It compresses with deflate's full 32 KiB window, so it
// declines an offer whose server_max_window_bits asks for a smaller one;
// client_max_window_bits needs no answer (the inflater takes any window).
// An offer it cannot meet, or a malformed one, is declined and the next
// offer tried; the connection goes ahead without compression either way.
type deflateOffer struct {
	enabled  bool // --compression
	accepted bool
}

// deflateResponse is the extension as accepted.
var deflateResponse = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}.Option()

// negotiate is ws.Upgrader's Negotiate: called for each offered extension,
// in the client's order of preference.
func (d *deflateOffer) negotiate(opt httphead.Option) (httphead.Option, error) {
	if !d.enabled || d.accepted || !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, nil
	}
	var p wsflate.Parameters
	if err := p.Parse(opt); err != nil {
		return httphead.Option{}, nil // a malformed offer is declined, not the connection
	}
	if p.ServerMaxWindowBits.Defined() && p.ServerMaxWindowBits < 15 {
		return httphead.Option{}, nil
	}
	d.accepted = true
	return deflateResponse, nil
}
