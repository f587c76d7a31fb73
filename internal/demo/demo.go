// Package demo is `popfetch demo`: a POP3 server in the process (pop3test, implicit TLS on
// 127.0.0.1) with sample messages, and a profile that syncs them into a maildir next to it.
package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/popfetch/popfetch/fetch/pop3/pop3test"
	"github.com/popfetch/popfetch/internal/fsutil"
)

// Demo is a running demo server and the profile written for it.
type Demo struct {
	Server   *pop3test.Server
	Config   string // the profile: DIR/config.yaml
	Messages int    // on the server at the start
}

// ErrWrite marks the errors of writing the demo's files.
var ErrWrite = errors.New("writing the demo's files")

// Start starts the server with fresh sample messages (new UIDLs each time) and writes its CA
// certificate and a profile into dir, which the caller has created private to the user. The
// profile's state and maildir are under dir.
func Start(dir string) (*Demo, error) {
	now := time.Now()
	var msgs []pop3test.Message
	for i, m := range messages {
		msgs = append(msgs, pop3test.Message{
			UID:  fmt.Sprintf("demo-%d-%d", now.Unix(), i+1),
			Data: fmt.Appendf(nil, m, now.Add(time.Duration(i-len(messages))*time.Minute).Format(time.RFC1123Z)),
		})
	}
	srv, err := pop3test.Start(&pop3test.Options{TLS: pop3test.ImplicitTLS, User: "demo", Password: "demo-password", Messages: msgs})
	if err != nil {
		return nil, err
	}
	ca := filepath.Join(dir, "demo-ca.pem")
	if err := writeFile(ca, srv.CACertPEM()); err != nil {
		srv.Close()
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	profile := "# Written by `popfetch demo`: a profile for its built-in server on " + srv.Addr() + ".\n" +
		"state_dir: " + yamlQuote(filepath.Join(dir, "state")) + "\n" +
		"accounts:\n" +
		"  demo:\n" +
		"    host: " + srv.Host() + "\n" +
		"    port: " + strconv.Itoa(srv.Port()) + "\n" +
		"    tls: implicit\n" +
		"    ca_file: " + yamlQuote(ca) + "\n" +
		"    user: demo\n" +
		"    password: demo-password   # fine for a demo; use the keyring or password_command for real\n" +
		"    deliver:\n" +
		"      maildir: " + yamlQuote(filepath.Join(dir, "Maildir")) + "\n"
	if err := writeFile(cfg, []byte(profile)); err != nil {
		srv.Close()
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	return &Demo{Server: srv, Config: cfg, Messages: len(msgs)}, nil
}

// Close stops the server.
func (d *Demo) Close() { d.Server.Close() }

// writeFile writes a file of the demo afresh: whatever is at path (the previous demo's file, or a
// symbolic link someone planted) is removed, not followed, and the file is created exclusively.
func writeFile(path string, data []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|fsutil.NoFollow, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// yamlQuote returns s as a YAML double-quoted scalar (a JSON string is one), so that a path with
// " #", ": " or a leading "*" reads back as itself. s must be valid UTF-8.
func yamlQuote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// messages are the sample messages (%s is the date); they include the cases that break naive
// fetchers: a line with a leading dot, 8-bit text, a long line.
var messages = []string{
	"From: Ada <ada@example.org>\nTo: you@example.org\nSubject: Welcome to popfetch\nDate: %s\n" +
		"Message-ID: <welcome@popfetch.demo>\n\nHello!\n\nThis message came from a POP3 server over TLS, was written to\n" +
		"the maildir's tmp/, made durable, moved to new/, recorded in the state, and only then deleted\n" +
		"on the server.\n",
	"From: Grace <grace@example.org>\nTo: you@example.org\nSubject: Dots and lines\nDate: %s\n" +
		"Message-ID: <dots@popfetch.demo>\n\nThe next line starts with a dot:\n.like this one\n" +
		"and this one is alone:\n.\nPOP3 escapes both on the wire; popfetch restores them.\n",
	"From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\nTo: you@example.org\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n" +
		"Date: %s\nMessage-ID: <utf8@popfetch.demo>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" +
		"Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln — 8-bit text arrives byte for byte.\n",
}
