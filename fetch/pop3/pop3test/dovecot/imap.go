package dovecot

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAPMessage is one message of a mailbox as an IMAP client sees it (FETCH BODY.PEEK[], FLAGS,
// INTERNALDATE).
type IMAPMessage struct {
	Body         []byte
	Flags        []string
	InternalDate time.Time
}

// IMAPMailbox returns the messages in user's mailbox as an IMAP client reads them over the server's
// implicit-TLS IMAP port, in UID order; nil when the mailbox does not exist. It needs Options.IMAP.
func (s *Server) IMAPMailbox(t testing.TB, user, password, mailbox string) []IMAPMessage {
	t.Helper()
	msgs, err := s.IMAPMessages(user, password, mailbox)
	if err != nil {
		t.Fatalf("dovecot: IMAPMailbox: %v", err)
	}
	return msgs
}

// IMAPMessages is IMAPMailbox for callers without a testing.TB.
func (s *Server) IMAPMessages(user, password, mailbox string) ([]IMAPMessage, error) {
	if s.IMAPSAddr == "" {
		return nil, fmt.Errorf("dovecot: started without Options.IMAP")
	}
	c, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: s.CAPool, ServerName: "localhost"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return nil, err
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if e, ok := err.(*imap.Error); ok && e.Type == imap.StatusResponseTypeNo {
			return nil, nil
		}
		return nil, err
	}
	if sel.NumMessages == 0 {
		return []IMAPMessage{}, nil
	}
	var all imap.SeqSet
	all.AddRange(1, 0) // 1:*
	bufs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, InternalDate: true, UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		return nil, err
	}
	out := make([]IMAPMessage, 0, len(bufs))
	for _, b := range bufs {
		m := IMAPMessage{InternalDate: b.InternalDate}
		for _, f := range b.Flags {
			m.Flags = append(m.Flags, string(f))
		}
		if len(b.BodySection) > 0 {
			m.Body = b.BodySection[0].Bytes
		}
		out = append(out, m)
	}
	c.Logout().Wait()
	return out, nil
}
