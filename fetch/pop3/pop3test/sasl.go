package pop3test

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/xdg-go/scram"
)

var (
	errCancelled = errors.New("pop3test: authentication cancelled")
	errBase64    = errors.New("pop3test: invalid base64")
)

// saslError is a SASL protocol violation, sent as "-ERR <text>".
type saslError string

func (e saslError) Error() string { return string(e) }

// auth implements the RFC 5034 AUTH command.
func (s *session) auth(args []string) {
	if len(args) == 0 {
		// Not defined by RFC 5034; list the mechanisms as some servers do.
		s.writeLine("+OK")
		for _, m := range s.srv.mechs {
			s.writeLine(m)
		}
		s.end3()
		return
	}
	if len(args) > 2 {
		s.writeLine("-ERR syntax error")
		return
	}
	mech := strings.ToUpper(args[0])
	if !slices.Contains(s.srv.mechs, mech) {
		s.writeLine("-ERR Unsupported authentication mechanism")
		return
	}
	var ir []byte
	hasIR := len(args) == 2
	if hasIR && args[1] != "=" {
		var err error
		if ir, err = base64.StdEncoding.DecodeString(args[1]); err != nil {
			s.writeLine("-ERR invalid base64 data")
			return
		}
	}
	var ok bool
	var err error
	switch mech {
	case "PLAIN":
		ok, err = s.saslPlain(ir, hasIR)
	case "LOGIN":
		ok, err = s.saslLogin(ir, hasIR)
	case "CRAM-MD5":
		ok, err = s.saslCRAMMD5(hasIR)
	case "SCRAM-SHA-1":
		ok, err = s.saslSCRAM(s.srv.scram1, ir, hasIR)
	case "SCRAM-SHA-256":
		ok, err = s.saslSCRAM(s.srv.scram2, ir, hasIR)
	case "XOAUTH2":
		ok, err = s.saslXOAUTH2(ir, hasIR)
	case "OAUTHBEARER":
		ok, err = s.saslOAuthBearer(ir, hasIR)
	default:
		s.writeLine("-ERR Unsupported authentication mechanism")
		return
	}
	switch {
	case errors.Is(err, errCancelled):
		s.writeLine("-ERR authentication cancelled")
	case errors.Is(err, errBase64):
		s.writeLine("-ERR invalid base64 data")
	case errors.As(err, new(saslError)):
		s.writeLine("-ERR " + err.Error())
	case err != nil:
		s.end = true // I/O error or fault
	case ok:
		s.login()
	default:
		s.authFailed()
	}
}

// challenge sends a "+ <base64>" continuation (RFC 5034 §4) and returns the
// client's decoded response.
func (s *session) challenge(data []byte) ([]byte, error) {
	s.writeLine("+ " + base64.StdEncoding.EncodeToString(data))
	line, err := s.readLine(MaxAuthLine)
	if err != nil {
		return nil, err
	}
	if line == "*" {
		return nil, errCancelled
	}
	resp, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, errBase64
	}
	return resp, nil
}

// first returns the initial response, or asks for it with an empty
// challenge.
func (s *session) first(ir []byte, hasIR bool) ([]byte, error) {
	if hasIR {
		return ir, nil
	}
	return s.challenge(nil)
}

// saslPlain implements PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd.
func (s *session) saslPlain(ir []byte, hasIR bool) (bool, error) {
	resp, err := s.first(ir, hasIR)
	if err != nil {
		return false, err
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return false, nil
	}
	o := &s.srv.opts
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	return (authz == "" || authz == o.User) && user == o.User && pass == o.Password, nil
}

// saslLogin implements LOGIN: challenges "Username:" then "Password:"; an
// initial response is taken as the user name.
func (s *session) saslLogin(ir []byte, hasIR bool) (bool, error) {
	user := ir
	if !hasIR || len(ir) == 0 {
		var err error
		if user, err = s.challenge([]byte("Username:")); err != nil {
			return false, err
		}
	}
	pass, err := s.challenge([]byte("Password:"))
	if err != nil {
		return false, err
	}
	o := &s.srv.opts
	return string(user) == o.User && string(pass) == o.Password, nil
}

// saslCRAMMD5 implements CRAM-MD5 (RFC 2195).
func (s *session) saslCRAMMD5(hasIR bool) (bool, error) {
	if hasIR {
		return false, saslError("CRAM-MD5 takes no initial response")
	}
	ch := fmt.Sprintf("<%d.%d.%d@pop3test>", os.Getpid(), time.Now().UnixNano(), s.id)
	resp, err := s.challenge([]byte(ch))
	if err != nil {
		return false, err
	}
	i := bytes.LastIndexByte(resp, ' ')
	if i < 0 {
		return false, nil
	}
	o := &s.srv.opts
	mac := hmac.New(md5.New, []byte(o.Password))
	mac.Write([]byte(ch))
	want := hex.EncodeToString(mac.Sum(nil))
	return string(resp[:i]) == o.User && strings.EqualFold(string(resp[i+1:]), want), nil
}

// saslSCRAM implements SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677)
// without channel binding. The server-final message is sent as a last
// challenge, to which the client answers with an empty line.
func (s *session) saslSCRAM(srv *scram.Server, ir []byte, hasIR bool) (bool, error) {
	conv := srv.NewConversation()
	c1, err := s.first(ir, hasIR)
	if err != nil {
		return false, err
	}
	s1, err := conv.Step(string(c1))
	if err != nil {
		return false, nil
	}
	c2, err := s.challenge([]byte(s1))
	if err != nil {
		return false, err
	}
	s2, err := conv.Step(string(c2))
	if err != nil || !conv.Valid() {
		return false, nil
	}
	if _, err := s.challenge([]byte(s2)); err != nil {
		return false, err
	}
	return true, nil
}

// saslXOAUTH2 implements Google's XOAUTH2:
// "user=U\x01auth=Bearer T\x01\x01". On failure the server sends a JSON
// error as a challenge, and fails after the client's (empty) answer.
func (s *session) saslXOAUTH2(ir []byte, hasIR bool) (bool, error) {
	resp, err := s.first(ir, hasIR)
	if err != nil {
		return false, err
	}
	o := &s.srv.opts
	var user, auth string
	for kv := range strings.SplitSeq(string(resp), "\x01") {
		if v, ok := strings.CutPrefix(kv, "user="); ok {
			user = v
		} else if v, ok := strings.CutPrefix(kv, "auth="); ok {
			auth = v
		}
	}
	if user == o.User && auth == "Bearer "+s.srv.token && strings.HasSuffix(string(resp), "\x01\x01") {
		return true, nil
	}
	if _, err := s.challenge([]byte(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`)); err != nil {
		return false, err
	}
	return false, nil
}

// saslOAuthBearer implements OAUTHBEARER (RFC 7628):
// gs2 header "n,a=U," then "\x01" key=value pairs including
// "auth=Bearer T", then "\x01\x01". On failure the server sends a JSON error
// as a challenge, and fails after the client's answer (RFC 7628 §3.2.3).
func (s *session) saslOAuthBearer(ir []byte, hasIR bool) (bool, error) {
	resp, err := s.first(ir, hasIR)
	if err != nil {
		return false, err
	}
	o := &s.srv.opts
	ok := false
	if gs2, kvs, found := strings.Cut(string(resp), "\x01"); found && strings.HasSuffix(kvs, "\x01\x01") {
		fields := strings.Split(gs2, ",")
		user := o.User
		for _, f := range fields[1:] {
			if v, isA := strings.CutPrefix(f, "a="); isA {
				user = v
			}
		}
		var auth string
		for kv := range strings.SplitSeq(kvs, "\x01") {
			if v, isAuth := strings.CutPrefix(kv, "auth="); isAuth {
				auth = v
			}
		}
		ok = len(fields) >= 2 && (fields[0] == "n" || fields[0] == "y") &&
			user == o.User && auth == "Bearer "+s.srv.token
	}
	if ok {
		return true, nil
	}
	if _, err := s.challenge([]byte(`{"status":"invalid_token","scope":"https://mail.google.com/"}`)); err != nil {
		return false, err
	}
	return false, nil
}
