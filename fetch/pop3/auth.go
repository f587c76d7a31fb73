package pop3

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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

// chooseMechanism implements "auto": the strongest mechanism the server offers, never one that would
// expose the password without TLS unless allowed. Preference with TLS: SCRAM-SHA-256, SCRAM-SHA-1,
// PLAIN, LOGIN, USER, CRAM-MD5, APOP (a server that supports PLAIN can keep hashed passwords; CRAM-MD5
// and APOP need the plaintext on the server). Without TLS the challenge-response mechanisms come
// first.
func (c *Client) chooseMechanism(allowPlain bool) (string, error) {
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
	var order []string
	if encrypted {
		order = []string{MechSCRAMSHA256, MechSCRAMSHA1, MechPlain, MechLogin, MechUser, MechCRAMMD5, MechAPOP}
	} else {
		order = []string{MechSCRAMSHA256, MechSCRAMSHA1, MechCRAMMD5, MechAPOP, MechPlain, MechLogin, MechUser}
	}
	refusedPlain := false
	for _, m := range order {
		if !offered(m) {
			continue
		}
		if exposesSecret(m) && !encrypted && !allowPlain {
			refusedPlain = true
			continue
		}
		return m, nil
	}
	if refusedPlain {
		return "", ErrPlaintextAuth
	}
	return "", ErrNoMechanism
}

// Auth authenticates (RFC 1939 §7 USER/PASS and APOP; RFC 5034 AUTH with SASL). With mechanism auto,
// CAPA is issued first if it was not. A refusal is an *Error (see Error.AuthFailed and
// Error.Temporary); ErrPlaintextAuth means nothing was sent because the connection is not encrypted.
func (c *Client) Auth(ctx context.Context, cr Credentials) error {
	mech := strings.ToLower(cr.Mechanism)
	if mech == "" {
		mech = MechAuto
	}
	if strings.ContainsAny(cr.Username, "\r\n") {
		return fmt.Errorf("pop3: user name contains a line break")
	}
	if mech == MechAuto {
		if c.caps == nil {
			if _, err := c.Capa(ctx); err != nil {
				var perr *Error
				if !errors.As(err, &perr) {
					return err
				}
			}
		}
		m, err := c.chooseMechanism(cr.AllowPlaintext)
		if err != nil {
			return err
		}
		mech = m
	}
	if exposesSecret(mech) && c.tlsState == nil && !cr.AllowPlaintext {
		return ErrPlaintextAuth
	}
	err := c.authWith(ctx, mech, cr)
	if err != nil && c.listingQueued && c.broken == nil {
		// Refused: the server answers the queued LIST and UIDL with -ERR; read them out of the way.
		if _, _, derr := c.readQueuedListing(); derr != nil && !isRefusal(derr) {
			return derr
		}
	}
	return err
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
		c.queueListingNow() // PASS is the last word of the login
	}
	if err := c.bw.Flush(); err != nil {
		return c.ioError("USER", err)
	}
	_, userErr := c.readOK("USER")
	if userErr != nil && !pipelined {
		return userErr
	}
	if userErr != nil && !isRefusal(userErr) {
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

func isRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e)
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
	if mech == "PLAIN" && deferred == nil && ir != nil {
		// PLAIN with its initial response says everything in one line: nothing can follow but the
		// verdict, so LIST and UIDL may go right behind it.
		if err := c.sendThenQueue("AUTH", line, shown); err != nil {
			return err
		}
	} else if err := c.send("AUTH", line, shown); err != nil {
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
		if f, ok := client.(interface{ final() bool }); ok && f.final() {
			// The mechanism has verified the server and has nothing more to say (SCRAM's last, empty
			// response): only the verdict can follow.
			if err := c.sendThenQueue("AUTH", line, "<redacted>"); err != nil {
				return err
			}
			continue
		}
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

// final reports whether the conversation is over on the client's side: the server's signature was
// checked, and the response being sent is the last one.
func (s *scramClient) final() bool { return s.conv != nil && s.conv.Done() && s.conv.Valid() }

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
