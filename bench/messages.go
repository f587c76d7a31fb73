//go:build linux

package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"time"
)

// Message generation: deterministic (the same scenario, account and index always give the same
// bytes), LF line endings as a maildir stores them, every message with a unique Message-ID by which
// the verifier finds it. Among every 20 messages of the small kind:
//
//	index%20 == 3       lines starting with dots: ".", "..", ".signature", ". ." (dot-stuffing)
//	index%20 == 7       a line of 6,000 bytes (longer than 4 KiB and than RFC 5322's 998)
//	index%20 == 11      8-bit bytes: UTF-8 and raw Latin-1 in a text/plain; charset=utf-8 body
//	index%20 == 15      multipart/mixed with a base64 attachment
//	index%20 == 19      no final newline
//	otherwise           plain text

var words = []string{"the", "mail", "server", "fetch", "message", "pipeline", "round", "trip", "latency",
	"delivery", "maildir", "durable", "quota", "report", "meeting", "tomorrow", "invoice", "please",
	"attached", "regards", "project", "status", "update", "thanks", "review", "draft", "budget"}

// messageID is the Message-ID (without angle brackets) of message i of account acct in scenario sc.
func messageID(sc string, acct, i int) string {
	return fmt.Sprintf("bench.%s.%d.%d@popfetch.example", sc, acct, i)
}

func header(b *bytes.Buffer, sc string, acct, i int, r *rand.Rand, extra string) {
	date := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	fmt.Fprintf(b, "Return-Path: <sender%d@example.org>\n", i%97)
	fmt.Fprintf(b, "Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\n\tby pop.example.net with ESMTPS id %08x\n\tfor <user%d@example.net>; %s\n",
		i%5, i%5, i%250+1, r.Uint32(), acct, date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Date: %s\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: Sender %d <sender%d@example.org>\n", i%97, i%97)
	fmt.Fprintf(b, "To: User %d <user%d@example.net>\n", acct, acct)
	fmt.Fprintf(b, "Subject: %s %s %s #%d\n", words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], i)
	fmt.Fprintf(b, "Message-ID: <%s>\n", messageID(sc, acct, i))
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString(extra)
	b.WriteString("\n")
}

// text appends lines of words until b holds at least until bytes.
func text(b *bytes.Buffer, r *rand.Rand, until int) {
	for b.Len() < until {
		n := 0
		for n < 60 {
			w := words[r.IntN(len(words))]
			b.WriteString(w)
			b.WriteByte(' ')
			n += len(w) + 1
		}
		b.WriteString("\n")
	}
}

func base64Lines(b *bytes.Buffer, r *rand.Rand, n int) {
	raw := make([]byte, 57*1024)
	enc := make([]byte, base64.StdEncoding.EncodedLen(57))
	for n > 0 {
		k := min(n, len(raw))
		for j := 0; j < k; j += 8 {
			v := r.Uint64()
			for x := 0; x < 8 && j+x < k; x++ {
				raw[j+x] = byte(v >> (8 * x))
			}
		}
		for j := 0; j < k; j += 57 {
			line := raw[j:min(j+57, k)]
			base64.StdEncoding.Encode(enc, line)
			b.Write(enc[:base64.StdEncoding.EncodedLen(len(line))])
			b.WriteByte('\n')
		}
		n -= k
	}
}

// smallMessage returns message i of about size bytes (at least 1 KiB), of the kind its index
// selects.
func smallMessage(sc string, acct, i, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(acct)<<32|uint64(i), 0x706f7066657463))
	var b bytes.Buffer
	b.Grow(size + 8192)
	switch i % 20 {
	case 3:
		header(&b, sc, acct, i, r, "Content-Type: text/plain; charset=us-ascii\n")
		b.WriteString("Dots at the start of lines:\n.\n..\n...\n.signature\n. .\n")
		text(&b, r, size/2)
		b.WriteString(".\n")
		text(&b, r, size)
		b.WriteString("..\n")
	case 7:
		header(&b, sc, acct, i, r, "Content-Type: text/plain; charset=us-ascii\n")
		text(&b, r, 400)
		for j := 0; j < 6000; j++ {
			b.WriteByte('a' + byte(j%26))
		}
		b.WriteString("\n")
		text(&b, r, size)
	case 11:
		header(&b, sc, acct, i, r, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n")
		for b.Len() < size {
			b.WriteString("Grüße aus Köln — naïve café, Ærø, ¿qué? ")
			b.Write([]byte{0xe9, 0xe8, 0xff, 0x80, ' ', 0xa0, 0xfe})
			b.WriteString(" 日本語のテキスト\n")
		}
	case 15:
		header(&b, sc, acct, i, r, "Content-Type: multipart/mixed; boundary=\"=-b\"\n")
		b.WriteString("This is a multi-part message in MIME format.\n\n--=-b\nContent-Type: text/plain; charset=us-ascii\n\n")
		text(&b, r, 600)
		b.WriteString("\n--=-b\nContent-Type: application/octet-stream; name=\"data.bin\"\n" +
			"Content-Disposition: attachment; filename=\"data.bin\"\nContent-Transfer-Encoding: base64\n\n")
		if n := (size - b.Len() - 20) * 3 / 4; n > 0 {
			base64Lines(&b, r, n)
		}
		b.WriteString("--=-b--\n")
	case 19:
		header(&b, sc, acct, i, r, "Content-Type: text/plain; charset=us-ascii\n")
		text(&b, r, size)
		b.WriteString("no final newline")
	default:
		header(&b, sc, acct, i, r, "Content-Type: text/plain; charset=us-ascii\n")
		text(&b, r, size)
	}
	return b.Bytes()
}

// bigMessage returns message i: a short text part and a base64 attachment, about size bytes.
func bigMessage(sc string, acct, i, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(acct)<<32|uint64(i), 0x626967))
	var b bytes.Buffer
	b.Grow(size + 4096)
	header(&b, sc, acct, i, r, "Content-Type: multipart/mixed; boundary=\"=-big\"\n")
	b.WriteString("--=-big\nContent-Type: text/plain; charset=us-ascii\n\n")
	text(&b, r, 2000)
	b.WriteString("\n--=-big\nContent-Type: application/octet-stream; name=\"big.bin\"\n" +
		"Content-Disposition: attachment; filename=\"big.bin\"\nContent-Transfer-Encoding: base64\n\n")
	base64Lines(&b, r, (size-b.Len()-20)*57/77) // 57 bytes make a line of 76 + LF
	b.WriteString("--=-big--\n")
	return b.Bytes()
}
