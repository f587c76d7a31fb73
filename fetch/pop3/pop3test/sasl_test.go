package pop3test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/xdg-go/scram"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// challenge reads a "+ " continuation and returns it decoded.
func (c *client) challenge() string {
	c.t.Helper()
	l := c.line()
	enc, ok := strings.CutPrefix(l, "+ ")
	if !ok {
		c.t.Fatalf("want a continuation, got %q", l)
	}
	dec, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		c.t.Fatalf("continuation %q: %v", l, err)
	}
	return string(dec)
}

// saslClient drives a go-sasl client through AUTH, with or without initial
// response, and returns the final status line.
func (c *client) saslClient(sc sasl.Client, useIR bool) string {
	c.t.Helper()
	mech, ir, err := sc.Start()
	if err != nil {
		c.t.Fatal(err)
	}
	if useIR {
		enc := "="
		if len(ir) > 0 {
			enc = b64(string(ir))
		}
		c.send("AUTH %s %s", mech, enc)
	} else {
		c.send("AUTH %s", mech)
		if ch := c.challenge(); ch != "" {
			c.t.Fatalf("first challenge %q, want empty", ch)
		}
		c.send("%s", b64(string(ir)))
	}
	for {
		l := c.line()
		enc, ok := strings.CutPrefix(l, "+ ")
		if !ok {
			return l
		}
		ch, _ := base64.StdEncoding.DecodeString(enc)
		resp, err := sc.Next(ch)
		if err != nil {
			c.send("") // RFC 7628: the client answers an error challenge
			continue
		}
		c.send("%s", b64(string(resp)))
	}
}

func TestSASLPlain(t *testing.T) {
	s := NewServer(t, nil)
	for _, tt := range []struct {
		name              string
		authz, user, pass string
		useIR             bool
		want              string
	}{
		{"IR", "", "alice", "secret", true, "+OK Logged in."},
		{"no IR", "", "alice", "secret", false, "+OK Logged in."},
		{"authzid", "alice", "alice", "secret", true, "+OK Logged in."},
		{"other authzid", "root", "alice", "secret", true, "-ERR [AUTH] Authentication failed"},
		{"bad password", "", "alice", "nope", true, "-ERR [AUTH] Authentication failed"},
		{"bad user", "", "bob", "secret", false, "-ERR [AUTH] Authentication failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s).greet()
			if got := c.saslClient(sasl.NewPlainClient(tt.authz, tt.user, tt.pass), tt.useIR); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSASLLogin(t *testing.T) {
	s := NewServer(t, nil)
	c := dial(t, s).greet()
	c.send("AUTH LOGIN")
	if ch := c.challenge(); ch != "Username:" {
		t.Fatalf("challenge %q", ch)
	}
	c.send("%s", b64("alice"))
	if ch := c.challenge(); ch != "Password:" {
		t.Fatalf("challenge %q", ch)
	}
	c.expect(b64("secret"), "+OK Logged in.")

	// Initial response is the user name; go-sasl's LOGIN client does that.
	c2 := dial(t, s).greet()
	if got := c2.saslClient(sasl.NewLoginClient("alice", "secret"), true); got != "+OK Logged in." {
		t.Errorf("LOGIN with IR: %q", got)
	}
	c3 := dial(t, s).greet()
	if got := c3.saslClient(sasl.NewLoginClient("alice", "wrong"), true); got != "-ERR [AUTH] Authentication failed" {
		t.Errorf("LOGIN wrong password: %q", got)
	}
}

func TestSASLCRAMMD5(t *testing.T) {
	s := NewServer(t, nil)
	for _, pw := range []string{"secret", "wrong"} {
		c := dial(t, s).greet()
		c.send("AUTH CRAM-MD5")
		ch := c.challenge()
		if !strings.HasPrefix(ch, "<") || !strings.HasSuffix(ch, "@pop3test>") {
			t.Fatalf("challenge %q", ch)
		}
		mac := hmac.New(md5.New, []byte(pw))
		mac.Write([]byte(ch))
		want := "+OK Logged in."
		if pw != "secret" {
			want = "-ERR [AUTH] Authentication failed"
		}
		c.expect(b64("alice "+hex.EncodeToString(mac.Sum(nil))), want)
	}
	c := dial(t, s).greet()
	c.expect("AUTH CRAM-MD5 "+b64("alice x"), "-ERR CRAM-MD5 takes no initial response")
}

func TestSASLSCRAM(t *testing.T) {
	s := NewServer(t, nil)
	for _, tt := range []struct {
		mech  string
		hash  scram.HashGeneratorFcn
		pass  string
		useIR bool
		want  string
	}{
		{"SCRAM-SHA-256", scram.SHA256, "secret", true, "+OK Logged in."},
		{"SCRAM-SHA-256", scram.SHA256, "secret", false, "+OK Logged in."},
		{"SCRAM-SHA-1", scram.SHA1, "secret", true, "+OK Logged in."},
		{"SCRAM-SHA-256", scram.SHA256, "wrong", true, "-ERR [AUTH] Authentication failed"},
		{"SCRAM-SHA-1", scram.SHA1, "wrong", false, "-ERR [AUTH] Authentication failed"},
	} {
		t.Run(tt.mech+"/"+tt.pass, func(t *testing.T) {
			sc, err := tt.hash.NewClient("alice", tt.pass, "")
			if err != nil {
				t.Fatal(err)
			}
			conv := sc.NewConversation()
			c := dial(t, s).greet()
			c1, _ := conv.Step("")
			if tt.useIR {
				c.send("AUTH %s %s", tt.mech, b64(c1))
			} else {
				c.send("AUTH %s", tt.mech)
				c.challenge()
				c.send("%s", b64(c1))
			}
			s1 := c.challenge()
			c2, err := conv.Step(s1)
			if err != nil {
				t.Fatal(err)
			}
			c.send("%s", b64(c2))
			l := c.line()
			if l == tt.want {
				return
			}
			enc, ok := strings.CutPrefix(l, "+ ")
			if !ok {
				t.Fatalf("got %q, want %q", l, tt.want)
			}
			s2, _ := base64.StdEncoding.DecodeString(enc)
			if _, err := conv.Step(string(s2)); err != nil || !conv.Valid() {
				t.Fatalf("server-final %q: %v", s2, err)
			}
			c.expect("", tt.want)
		})
	}
}

func TestSASLOAuth(t *testing.T) {
	s := NewServer(t, &Options{Token: "tok"})
	xo := func(user, tok string) string { return b64("user=" + user + "\x01auth=Bearer " + tok + "\x01\x01") }

	c := dial(t, s).greet()
	c.expect("AUTH XOAUTH2 "+xo("alice", "tok"), "+OK Logged in.")

	c = dial(t, s).greet()
	c.expect("AUTH XOAUTH2", "+ ")
	c.expect(xo("alice", "tok"), "+OK Logged in.")

	c = dial(t, s).greet()
	c.send("AUTH XOAUTH2 %s", xo("alice", "secret")) // the password is not the token
	if ch := c.challenge(); !strings.Contains(ch, `"status":"401"`) {
		t.Errorf("XOAUTH2 error challenge %q", ch)
	}
	c.expect("", "-ERR [AUTH] Authentication failed")

	for _, tt := range []struct {
		user, tok string
		useIR     bool
		want      string
	}{
		{"alice", "tok", true, "+OK Logged in."},
		{"alice", "tok", false, "+OK Logged in."},
		{"", "tok", true, "+OK Logged in."},
		{"bob", "tok", true, "-ERR [AUTH] Authentication failed"},
		{"alice", "bad", true, "-ERR [AUTH] Authentication failed"},
	} {
		c := dial(t, s).greet()
		sc := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: tt.user, Token: tt.tok, Host: s.Host(), Port: s.Port()})
		if got := c.saslClient(sc, tt.useIR); got != tt.want {
			t.Errorf("OAUTHBEARER %+v: got %q, want %q", tt, got, tt.want)
		}
	}

	// Without Token, the password is the token.
	c = dial(t, NewServer(t, nil)).greet()
	c.expect("AUTH XOAUTH2 "+xo("alice", "secret"), "+OK Logged in.")
}

func TestAUTHCommand(t *testing.T) {
	s := NewServer(t, &Options{SASL: []string{"PLAIN", "LOGIN"}})
	c := dial(t, s).greet()
	if got := c.multi("AUTH"); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("AUTH lists %q", got)
	}
	c.expect("AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism")
	c.expect("AUTH PLAIN !!!", "-ERR invalid base64 data")
	c.expect("AUTH PLAIN", "+ ")
	c.expect("*", "-ERR authentication cancelled")
	c.expect("AUTH LOGIN", "+ "+b64("Username:"))
	c.expect("not base64!", "-ERR invalid base64 data")
	c.expect("AUTH PLAIN =", "-ERR [AUTH] Authentication failed")
	c.expect("auth plain "+b64("\x00alice\x00secret"), "+OK Logged in.")
	c.expect("AUTH PLAIN", "-ERR command not valid in this state")

	c2 := dial(t, NewServer(t, &Options{SASL: []string{}})).greet()
	c2.expect("AUTH PLAIN "+b64("\x00alice\x00secret"), "-ERR unknown command")

	c3 := dial(t, NewServer(t, &Options{NoRespCodes: true})).greet()
	c3.expect("AUTH PLAIN "+b64("\x00alice\x00wrong"), "-ERR Authentication failed")
}
