//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// traceFields are the header fields a fetcher may put in front of a message: its trace header
// (popfetch, mpop and fetchmail add Received:) and what an MDA adds.
var traceFields = []string{"received", "return-path", "delivered-to", "status", "x-"}

// matchDelivered reports whether got is want as a fetcher delivers it: CRLF turned into LF (or
// not), header fields from traceFields added anywhere in the header (fetchmail puts its Received:
// after Return-Path:), and a newline added when want has no final one (POP3 cannot transmit a
// message without one). Everything else must be byte for byte the same.
func matchDelivered(got, want []byte) error {
	got = bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n"))
	gh, gb := splitMessage(got)
	wh, wb := splitMessage(want)
	gf, wf := fields(gh), fields(wh)
	j := 0
	for i, f := range gf {
		if j < len(wf) && f == wf[j] {
			j++
			continue
		}
		if !isTraceField(f) {
			return fmt.Errorf("header field %d %.60q is not in the original (or not in its place)", i+1, f)
		}
	}
	if j < len(wf) {
		return fmt.Errorf("header field %.60q of the original is missing", wf[j])
	}
	if bytes.Equal(gb, wb) || !bytes.HasSuffix(wb, []byte("\n")) && bytes.Equal(gb, append(slices.Clip(wb), '\n')) {
		return nil
	}
	return fmt.Errorf("body differs from the original at byte %d (%d bytes, original %d)", firstDiff(gb, wb), len(gb), len(wb))
}

// splitMessage returns the header (with the newline ending its last field) and the body (after the
// empty line).
func splitMessage(m []byte) (header, body []byte) {
	if i := bytes.Index(m, []byte("\n\n")); i >= 0 {
		return m[:i+1], m[i+2:]
	}
	return m, nil
}

// fields splits a header into fields, each with its continuation lines.
func fields(h []byte) []string {
	var out []string
	for len(h) > 0 {
		end := 0
		for {
			nl := bytes.IndexByte(h[end:], '\n')
			if nl < 0 {
				end = len(h)
				break
			}
			end += nl + 1
			if end >= len(h) || h[end] != ' ' && h[end] != '\t' {
				break
			}
		}
		out = append(out, string(h[:end]))
		h = h[end:]
	}
	return out
}

func isTraceField(f string) bool {
	name, _, ok := strings.Cut(f, ":")
	if !ok {
		return false
	}
	name = strings.ToLower(name)
	for _, t := range traceFields {
		if name == t || strings.HasSuffix(t, "-") && strings.HasPrefix(name, t) {
			return true
		}
	}
	return false
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// idOf returns the Message-ID of msg (without angle brackets), from its header.
func idOf(msg []byte) string {
	head := msg
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		head = msg[:i+1]
	}
	head = bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n"))
	const key = "\nmessage-id: <"
	i := bytes.Index(bytes.ToLower(head), []byte(key))
	if i < 0 {
		return ""
	}
	rest := head[i+len(key):]
	j := bytes.IndexByte(rest, '>')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// verifyMaildir checks that maildir holds exactly the messages of want (by Message-ID), each once
// and intact, and nothing else.
func verifyMaildir(dir string, want map[string][]byte) error {
	var files []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(dir, sub, e.Name()))
			}
		}
	}
	seen := make(map[string]bool, len(want))
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 5 {
			problems = append(problems, "...")
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		id := idOf(data)
		orig, ok := want[id]
		switch {
		case !ok:
			report("%s: not a seeded message (Message-ID %q)", filepath.Base(f), id)
		case seen[id]:
			report("%s: %s delivered twice", filepath.Base(f), id)
		default:
			seen[id] = true
			if err := matchDelivered(data, orig); err != nil {
				report("%s: %s %v", filepath.Base(f), id, err)
			}
		}
	}
	if missing := len(want) - len(seen); missing > 0 {
		for id := range want {
			if !seen[id] {
				report("%d messages missing, e.g. %s", missing, id)
				break
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("maildir %s: %s", dir, strings.Join(problems, "; "))
	}
	return nil
}

// verifyServer checks the server's mailbox after a run: empty when the fetcher deleted, else the
// seeded messages, unchanged and in order.
func verifyServer(got, seeded [][]byte, keep bool) error {
	if !keep {
		if len(got) != 0 {
			return fmt.Errorf("server: %d messages left, want none", len(got))
		}
		return nil
	}
	if len(got) != len(seeded) {
		return fmt.Errorf("server: %d messages, want the %d seeded", len(got), len(seeded))
	}
	for i := range got {
		if !bytes.Equal(got[i], seeded[i]) {
			return fmt.Errorf("server: message %d changed", i+1)
		}
	}
	return nil
}
