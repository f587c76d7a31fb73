package pop3

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

func BenchmarkParseStatus(b *testing.B) {
	line := []byte("-ERR [SYS/TEMP] the maildrop is being backed up, try again later")
	for b.Loop() {
		parseStatus(line)
	}
}

func BenchmarkParseUIDLLine(b *testing.B) {
	line := []byte("12345 000030396b045242")
	for b.Loop() {
		parseUIDLLine(line)
	}
}

// dotWire is a 4 MiB dot-stuffed body of 78-character lines, some starting with ".".
func dotWire() []byte {
	var w bytes.Buffer
	line := strings.Repeat("x", 76)
	for i := 0; w.Len() < 4<<20; i++ {
		if i%20 == 0 {
			w.WriteString("..")
		}
		w.WriteString(line)
		w.WriteString("\r\n")
	}
	w.WriteString(".\r\n")
	return w.Bytes()
}

// BenchmarkDotDecode compares popfetch's dotReader with net/textproto's DotReader on the same body.
func BenchmarkDotDecode(b *testing.B) {
	wire := dotWire()
	b.Run("dotReader", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		br := bufio.NewReaderSize(nil, bufferSize)
		for b.Loop() {
			br.Reset(bytes.NewReader(wire))
			if _, err := io.Copy(io.Discard, newDotReader(br, func(err error) error { return err })); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("textproto", func(b *testing.B) {
		b.SetBytes(int64(len(wire)))
		br := bufio.NewReaderSize(nil, bufferSize)
		for b.Loop() {
			br.Reset(bytes.NewReader(wire))
			if _, err := io.Copy(io.Discard, textproto.NewReader(br).DotReader()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
