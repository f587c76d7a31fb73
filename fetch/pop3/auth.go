package pop3

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/xdg-go/scram"
)

// Mechanism names accepted in Credentials.Mechanism (case-insensitive). "auto" (or "") picks the
// strongest the server offers; see Auth.
const (
	MechAuto        = "auto"
	MechUser        = "user" // USER/PASS, RFC 1939 §7
	MechAPOP        = "apop" // RFC 1939 §7
	MechPlain       = "plain"
	MechLogin       = "login"
	MechSCRAMSHA256 = "scram-sha-256"
	MechSCRAMSHA1   = "scram-sha-1"
	MechCRAMMD5     = "cram-md5"
	MechXOAUTH2     = "xoauth2"
	MechOAUTHBEARER = "oauthbearer"
)

// Mechanisms lists every mechanism name Auth accepts.
var Mechanisms = []string{MechAuto, MechUser, MechAPOP, MechPlain, MechLogin, MechSCRAMSHA256,
	MechSCRAMSHA1, MechCRAMMD5, MechXOAUTH2, MechOAUTHBEARER}

// Credentials are what Auth needs.
type Credentials struct {
	Username string
	// Secret is the password, or the OAuth2 access token for xoauth2 and oauthbearer.
	Secret string
	// Mechanism is one of the Mech* names; "" means auto.
	Mechanism string
	// AllowPlaintext permits sending the secret itself (USER/PASS, PLAIN, LOGIN, XOAUTH2, OAUTHBEARER)
	// over a connection without TLS. Challenge-response mechanisms (SCRAM, CRAM-MD5, APOP) never send
	// it and need no permission.
	AllowPlaintext bool
}

// exposesSecret reports whether mech sends the secret itself over the wire.
func exposesSecret(mech string) bool {
	switch mech {
	case MechUser, MechPlain, MechLogin, MechXOAUTH2, MechOAUTHBEARER:
		return true
	}
	return false
}

// needsTLS reports whether mech may be used over a connection without TLS only with
// Credentials.AllowPlaintext: those that send the secret, and APOP and CRAM-MD5, whose MD5 digests of
// a challenge an eavesdropper can crack offline (CVE-2007-1558 for APOP).
func needsTLS(mech string) bool {
	return exposesSecret(mech) || mech == MechAPOP || mech == MechCRAMMD5
}

// plaintextError is ErrPlaintextAuth naming the mechanism.
func plaintextError(mech string) error {
	if exposesSecret(mech) {
		return fmt.Errorf("%w (%s sends it as it is)", ErrPlaintextAuth, strings.ToUpper(mech))
	}
	return fmt.Errorf("%w (%s's digest can be cracked offline by anyone who sees it)", ErrPlaintextAuth, strings.ToUpper(mech))
}

// candidates implements "auto": the mechanisms the server offers that may be used here, strongest
// first. Preference with TLS: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN, USER, CRAM-MD5, APOP (a server
// that supports PLAIN can keep hashed passwords; CRAM-MD5 and APOP need the plaintext on the server).
// Without TLS only SCRAM is used unless allowPlain. refusedPlain reports that a mechanism was
// offered but left out for want of TLS.
func (c *Client) candidates(allowPlain bool) (order []string, refusedPlain bool) {
	caps := c.caps
	encrypted := c.tlsState != nil
	offered := func(m string) bool {
		switch m {
		case MechUser:
			// RFC 2449 §6.3: USER is advertised; servers without CAPA are assumed to support it.
			return caps == nil || caps.User
		case MechAPOP:
			return c.timestamp != ""
		}
		return caps.HasSASL(m)
	}
	pref := []string{MechSCRAMSHA256, MechSCRAMSHA1, MechPlain, MechLogin, MechUser, MechCRAMMD5, MechAPOP}
	if !encrypted {
		pref = []string{MechSCRAMSHA256, MechSCRAMSHA1, MechCRAMMD5, MechAPOP, MechPlain, MechLogin, MechUser}
	}
	for _, m := range pref {
		if !offered(m) {
			continue
		}
		if needsTLS(m) && !encrypted && !allowPlain {
			refusedPlain = true
			continue
		}
		order = append(order, m)
	}
	return order, refusedPlain
}

// Auth authenticates (RFC 1939 §7 USER/PASS and APOP; RFC 5034 AUTH with SASL). A refusal is an
// *Error (see Error.AuthFailed and Error.Temporary); ErrPlaintextAuth means nothing was sent because
// the connection is not encrypted.
//
// With mechanism auto, CAPA is issued first if it was not, and the strongest usable mechanism is
// tried. When the server refuses the credentials with a mechanism that needs a secret of its own kind
// on the server (APOP, CRAM-MD5, SCRAM), the next mechanism of another kind is tried once, as
// fetchmail does (GNU mailutils offers APOP to users who have no APOP secret; a server that keeps
// only hashed passwords may offer SCRAM to users it has no SCRAM keys for), and the error names
// both. An explicit mechanism never falls back.
//
// Nothing is sent behind the login's last message before its final reply: a server may hand the
// connection to another process at login (Courier) and lose whatever was pipelined behind it.
func (c *Client) Auth(ctx context.Context, cr Credentials) error {
	mech := strings.ToLower(cr.Mechanism)
	if mech == "" {
		mech = MechAuto
	}
	if strings.ContainsAny(cr.Username, "\r\n") {
		return fmt.Errorf("pop3: user name contains a line break")
	}
	if mech != MechAuto {
		if needsTLS(mech) && c.tlsState == nil && !cr.AllowPlaintext {
			return plaintextError(mech)
		}
		return c.authWith(ctx, mech, cr)
	}
	if c.caps == nil && !c.capaDone {
		if _, err := c.Capa(ctx); err != nil && !IsRefusal(err) {
			return err
		}
	}
	order, refusedPlain := c.candidates(cr.AllowPlaintext)
	if len(order) == 0 {
		if refusedPlain {
			return fmt.Errorf("%w (the server offers only mechanisms that need TLS)", ErrPlaintextAuth)
		}
		return ErrNoMechanism
	}
	err := c.authWith(ctx, order[0], cr)
	var perr *Error
	if !errors.As(err, &perr) || !perr.AuthFailed() || c.broken != nil || !storedSecret(order[0]) {
		return err
	}
	i := slices.IndexFunc(order, func(m string) bool { return family(m) != family(order[0]) })
	if i < 0 {
		return err
	}
	if err2 := c.authWith(ctx, order[i], cr); err2 != nil {
		return fmt.Errorf("%w (tried %s, then %s)", err2, strings.ToUpper(order[0]), strings.ToUpper(order[i]))
	}
	return nil
}

// storedSecret reports whether mech works only when the server keeps a secret of its own kind for
// the user (an APOP secret, a plaintext password for CRAM-MD5, SCRAM keys), so that a server may
// offer it to users it cannot check with it. Only then does auto try another mechanism.
func storedSecret(mech string) bool {
	return mech == MechAPOP || mech == MechCRAMMD5 || family(mech) == "scram"
}

// family groups mechanisms that check the same stored secret: trying one after the other is futile.
func family(mech string) string {
	if strings.HasPrefix(mech, "scram-") {
		return "scram"
	}
	return mech
}

func (c *Client) authWith(ctx context.Context, mech string, cr Credentials) error {
	switch mech {
	case MechUser:
		return c.authUser(ctx, cr)
	case MechAPOP:
		return c.authAPOP(ctx, cr)
	}
	var client sasl.Client
	switch mech {
	case MechPlain:
		client = sasl.NewPlainClient("", cr.Username, cr.Secret)
	case MechLogin:
		client = &loginClient{user: cr.Username, pass: cr.Secret}
	case MechCRAMMD5:
		client = &cramMD5Client{user: cr.Username, pass: cr.Secret}
	case MechSCRAMSHA256, MechSCRAMSHA1:
		client = &scramClient{mech: mech, user: cr.Username, pass: cr.Secret}
	case MechXOAUTH2:
		client = &xoauth2Client{user: cr.Username, token: cr.Secret}
	case MechOAUTHBEARER:
		client = sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: cr.Username, Token: cr.Secret})
	default:
		return fmt.Errorf("pop3: unknown authentication mechanism %q", cr.Mechanism)
	}
	return c.authSASL(ctx, client)
}

// authUser sends USER and PASS, pipelined when the server allows it (RFC 2449 §6.7).
func (c *Client) authUser(ctx context.Context, cr Credentials) error {
	if strings.ContainsAny(cr.Secret, "\r\n") {
		return fmt.Errorf("pop3: password contains a line break")
	}
	stop, err := c.begin(ctx, "USER")
	if err != nil {
		return err
	}
	defer stop()
	c.trace("C: USER %s", cr.Username)
	c.bw.WriteString("USER " + cr.Username + "\r\n")
	pipelined := c.caps != nil && c.caps.Pipelining
	if pipelined {
		c.trace("C: PASS <redacted>")
		c.bw.WriteString("PASS " + cr.Secret + "\r\n")
	}
	if err := c.bw.Flush(); err != nil {
		return c.ioError("USER", err)
	}
	_, userErr := c.readOK("USER")
	if userErr != nil && !pipelined {
		return userErr
	}
	if userErr != nil && !IsRefusal(userErr) {
		return userErr
	}
	if !pipelined {
		if err := c.send("PASS", "PASS "+cr.Secret, "PASS <redacted>"); err != nil {
			return err
		}
	}
	_, passErr := c.readOK("PASS")
	if userErr != nil {
		return userErr
	}
	return passErr
}

// authAPOP sends APOP with the MD5 digest of the greeting's timestamp and the secret (RFC 1939 §7).
func (c *Client) authAPOP(ctx context.Context, cr Credentials) error {
	if c.timestamp == "" {
		return fmt.Errorf("%w: APOP: the server's greeting has no timestamp", ErrNoMechanism)
	}
	sum := md5.Sum([]byte(c.timestamp + cr.Secret))
	digest := hex.EncodeToString(sum[:])
	stop, err := c.begin(ctx, "APOP")
	if err != nil {
		return err
	}
	defer stop()
	if err := c.send("APOP", "APOP "+cr.Username+" "+digest, "APOP "+cr.Username+" <redacted>"); err != nil {
		return err
	}
	_, err = c.readOK("APOP")
	return err
}

// maxCommandLength is RFC 2449 §4's bound on a command line, CRLF included. RFC 5034 §4: an initial
// response that would exceed it is sent after an empty challenge instead (this is also the two-step
// XOAUTH2 form Microsoft documents).
const maxCommandLength = 255

// authSASL runs a SASL exchange (RFC 5034 §4).
func (c *Client) authSASL(ctx context.Context, client sasl.Client) error {
	mech, ir, err := client.Start()
	if err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	stop, err := c.begin(ctx, "AUTH")
	if err != nil {
		return err
	}
	defer stop()
	line := "AUTH " + mech
	var deferred []byte
	if ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		if len(line)+1+len(enc)+2 <= maxCommandLength {
			line += " " + enc
		} else {
			deferred = ir
		}
	}
	shown := "AUTH " + mech
	if line != shown {
		shown += " <redacted>"
	}
	if err := c.send("AUTH", line, shown); err != nil {
		return err
	}
	for {
		r, err := c.readStatus("AUTH")
		if err != nil {
			return err
		}
		if r.ok {
			if v, ok := client.(interface{ verify() error }); ok {
				if err := v.verify(); err != nil {
					return c.fail(err)
				}
			}
			return nil
		}
		// A continuation: a challenge.
		var resp []byte
		if deferred != nil {
			resp, deferred = deferred, nil
		} else {
			chal, derr := base64.StdEncoding.DecodeString(r.text)
			if derr != nil {
				return c.fail(protocolError("AUTH", "challenge is not base64"))
			}
			var merr error
			resp, merr = client.Next(chal)
			if merr != nil {
				// Cancel the exchange (RFC 5034 §4: "*") and report the server's verdict.
				if err := c.send("AUTH", "*", ""); err != nil {
					return err
				}
				if _, err := c.readOK("AUTH"); err != nil {
					return err // normally the server's -ERR
				}
				return fmt.Errorf("pop3: AUTH %s: %w", mech, merr)
			}
		}
		line := base64.StdEncoding.EncodeToString(resp)
		if err := c.send("AUTH", line, "<redacted>"); err != nil {
			return err
		}
	}
}

// loginClient is the LOGIN mechanism (draft-murchison-sasl-login). go-sasl's accepts only the exact
// challenge "Password:"; servers word their prompts differently, so this one answers the first
// challenge with the user name and the second with the password, whatever they say.
type loginClient struct {
	user, pass string
	step       int
}

func (l *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (l *loginClient) Next([]byte) ([]byte, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte(l.user), nil
	case 2:
		return []byte(l.pass), nil
	}
	return nil, errors.New("LOGIN: unexpected challenge")
}

// cramMD5Client is CRAM-MD5 (RFC 2195): "user hex(HMAC-MD5(password, challenge))".
type cramMD5Client struct{ user, pass string }

func (c *cramMD5Client) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5Client) Next(chal []byte) ([]byte, error) {
	h := hmac.New(md5.New, []byte(c.pass))
	h.Write(chal)
	return []byte(c.user + " " + hex.EncodeToString(h.Sum(nil))), nil
}

// scramClient is SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) over github.com/xdg-go/scram.
// After the server's +OK it checks that the server proved knowledge of the password.
type scramClient struct {
	mech       string
	user, pass string
	conv       *scram.ClientConversation
}

func (s *scramClient) Start() (string, []byte, error) {
	hf, name := scram.SHA256, "SCRAM-SHA-256"
	if s.mech == MechSCRAMSHA1 {
		hf, name = scram.SHA1, "SCRAM-SHA-1"
	}
	cl, err := hf.NewClient(s.user, s.pass, "")
	if err != nil {
		return "", nil, err
	}
	s.conv = cl.NewConversation()
	first, err := s.conv.Step("")
	if err != nil {
		return "", nil, err
	}
	return name, []byte(first), nil
}

func (s *scramClient) Next(chal []byte) ([]byte, error) {
	if s.conv.Done() {
		return nil, nil // an extra empty challenge; answer with an empty response
	}
	resp, err := s.conv.Step(string(chal))
	if err != nil {
		return nil, err
	}
	return []byte(resp), nil
}

func (s *scramClient) verify() error {
	if !s.conv.Done() || !s.conv.Valid() {
		return protocolError("AUTH", "SCRAM server did not prove knowledge of the password")
	}
	return nil
}

// xoauth2Client is Google's and Microsoft's XOAUTH2. On failure the server sends a JSON error as a
// challenge, to be answered with an empty response; the server then replies -ERR.
type xoauth2Client struct{ user, token string }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }
